import { type CephCluster, startCeph } from '../../scripts/ceph.js'

export { type CephCluster, CephStartError, startCeph } from '../../scripts/ceph.js'

/** The environment that points tusgate at a fresh bucket of a test cluster, in 5 MiB parts. */
export async function tusgateS3Env(ceph: CephCluster, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  return {
    STORE: 's3',
    S3_ENDPOINT: ceph.endpoint,
    S3_BUCKET: await ceph.createBucket(),
    S3_REGION: ceph.region,
    S3_ACCESS_KEY_ID: ceph.accessKeyId,
    S3_SECRET_ACCESS_KEY: ceph.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
    S3_PART_SIZE: '5MB',
    ...extra,
  }
}

/**
 * A Ceph for the tests of the enclosing describe block (or file): started before them, stopped after.
 * Call the returned function inside a test (or a later hook) for the running cluster.
 */
export function useCeph(): () => CephCluster {
  let ceph: CephCluster | undefined
  beforeAll(async () => {
    ceph = await startCeph()
  }, 120_000)
  afterAll(() => ceph?.stop())
  return () => {
    if (!ceph) throw new Error('useCeph: Ceph starts in beforeAll; use it inside a test')
    return ceph
  }
}
