import type { S3 } from '@aws-sdk/client-s3'

/** One HTTP request to S3, as it ended. */
export interface S3Request {
  /** The SDK command without its 'Command' suffix: UploadPart, PutObject, HeadObject, ListParts... */
  operation: string
  seconds: number
  /**
   * Absent when S3 answered with success. `status`: the HTTP status of a refusal (404 included: a
   * HeadObject asking whether an info object exists gets one), 'none' when no answer came (refused
   * connection, reset, timeout).
   */
  failure?: { status: number | 'none' }
}

export type S3RequestObserver = (request: S3Request) => void

type Failure = { $metadata?: { httpStatusCode?: number }; $response?: { statusCode?: number } }

function statusOf(error: unknown): number | 'none' {
  const { $metadata, $response } = (error ?? {}) as Failure
  return $metadata?.httpStatusCode ?? $response?.statusCode ?? 'none'
}

/**
 * Tells `observe` of every HTTP request the client sends, as an SDK middleware placed after the retry
 * middleware: each attempt of a retried command counts, with its own duration.
 */
export function observeRequests(client: S3, observe: S3RequestObserver): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = (context.commandName ?? 'Unknown').replace(/Command$/, '')
      const started = process.hrtime.bigint()
      const seconds = () => Number(process.hrtime.bigint() - started) / 1e9
      try {
        const result = await next(args)
        observe({ operation, seconds: seconds() })
        return result
      } catch (error) {
        observe({ operation, seconds: seconds(), failure: { status: statusOf(error) } })
        throw error
      }
    },
    { step: 'finalizeRequest', priority: 'low', name: 'tusgateRequestObserver' },
  )
}
