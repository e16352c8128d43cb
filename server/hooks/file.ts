import { lstat } from 'node:fs/promises'
import path from 'node:path'
import type { Config } from '../config.js'
import type { Logger } from '../logger.js'
import { requestContext } from '../requestContext.js'
import { runExecutable } from './executable.js'
import { HookCallError, type HookTransport, MAX_RESPONSE_BYTES, parseHookResponse, retrying } from './transport.js'
import type { HookRequest, HookResponse, HookType } from './types.js'

/** How much of a hook's stderr goes into its log line. */
const MAX_STDERR_LOGGED = 2_000

export type FileHookConfig = Pick<Config, 'HOOKS_DIR' | 'HOOKS_TIMEOUT' | 'HOOKS_RETRIES' | 'HOOKS_BACKOFF' | 'AUTH_MODE'>

export interface FileHookDeps {
  config: FileHookConfig
  /** Where each call's stderr goes, one line per call. */
  logger: Logger
}

/** Spawn errors worth trying again: the machine was short of processes or files for a moment. */
const TRANSIENT_SPAWN_ERRORS = new Set(['EAGAIN', 'EMFILE', 'ENFILE', 'ENOMEM'])

/** Under AUTH_MODE=hook these decide who gets in: a missing one refuses rather than lets everyone through. */
const GATEKEEPERS = new Set<HookType>(['pre-create', 'pre-access'])

/**
 * tusd's file hooks (`-hooks-dir`): the executable `<HOOKS_DIR>/<hook type>` gets the hook request as
 * JSON on stdin and answers the hook response on stdout; exit code 0 is success. A type without an
 * executable in the folder is skipped, as if it had answered `{}` (but pre-create and pre-access under
 * AUTH_MODE=hook, which fail).
 */
export function fileHook({ config, logger }: FileHookDeps): HookTransport {
  const dir = config.HOOKS_DIR as string

  const attempt = async (request: HookRequest, signal: AbortSignal): Promise<HookResponse> => {
    const file = path.join(dir, request.Type)
    const upload = request.Event.Upload
    // No inherited environment: tusgate's own holds secrets (S3 keys, JWT_SECRET, REDIS_URL).
    const env = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      TUSGATE_HOOK_TYPE: request.Type,
      // As tusd sets them, for scripts written for it.
      TUS_ID: upload.ID,
      TUS_SIZE: String(upload.Size),
      TUS_OFFSET: String(upload.Offset),
    }
    let run: Awaited<ReturnType<typeof runExecutable>>
    try {
      run = await runExecutable({ file, cwd: dir, env, input: JSON.stringify(request), signal, maxStdout: MAX_RESPONSE_BYTES, maxStderr: MAX_STDERR_LOGGED })
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unknown error'
      if (code === 'ENOENT' && !(await exists(file))) {
        if (config.AUTH_MODE === 'hook' && GATEKEEPERS.has(request.Type)) throw new HookCallError(`hook ${file} is missing (needed with AUTH_MODE=hook)`, false)
        return {}
      }
      // ENOENT for a name that exists: a broken link, or the interpreter its #! line names is missing.
      const why =
        code === 'EACCES'
          ? 'is not executable (EACCES)'
          : code === 'ENOENT'
            ? 'cannot start: a broken link, or its #! interpreter is missing (ENOENT)'
            : `cannot start (${code})`
      throw new HookCallError(`hook ${file} ${why}`, TRANSIENT_SPAWN_ERRORS.has(code))
    }
    if (run.stderr.length > 0) {
      const text = run.stderr.toString('utf8').trimEnd() + (run.stderrCut ? ' …' : '')
      logger.info('hook stderr', { requestId: requestContext.current()?.requestId, uploadId: upload.ID || undefined, type: request.Type, stderr: text })
    }
    if (run.killed === 'aborted') throw new HookCallError(`hook ${file} gave no answer within ${config.HOOKS_TIMEOUT} ms and was killed`, true)
    if (run.killed === 'overflow') throw new HookCallError(`hook ${file} wrote more than ${MAX_RESPONSE_BYTES} bytes to stdout and was killed`, false)
    if (run.signal) throw new HookCallError(`hook ${file} was ended by ${run.signal}`, true)
    if (run.code !== 0) throw new HookCallError(`hook ${file} exited with code ${run.code}`, false)
    return parseHookResponse(run.stdout.toString('utf8'))
  }

  return retrying(attempt, config)
}

/** Whether anything is at `file`, a broken symbolic link included. */
async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file)
    return true
  } catch {
    return false
  }
}
