export { type Account, bearer, grantRole, login, registerAccount, registerAdmin, uniqueEmail } from './accounts.ts';
export { failRevocationsOf, failWrites, failWritesOf } from './failing-writes.ts';
export { type FacebookUser, type FakeFacebook, type FakeFacebookOptions, startFakeFacebook } from './fake-facebook.ts';
export { type FakeGitHub, type FakeGitHubOptions, type GitHubUser, startFakeGitHub } from './fake-github.ts';
export {
  type AuthorizeOutcome,
  type FakeOidcProvider,
  type FakeOidcProviderOptions,
  type FakeRequest,
  formPostFields,
  type OidcUser,
  startFakeOidcProvider,
  type TokenEndpointMode,
} from './fake-oidc-provider.ts';
export { startFakeRedis } from './fake-redis.ts';
export { startFakeResend } from './fake-resend.ts';
export { abortedCalls, startedCalls, testRouter } from './probe-router.ts';
export { freePort, type RedisServer, startRedisServer } from './redis-server.ts';
export { type S3Server, startS3Server } from './s3-server.ts';
export { LOCALHOST_TLS, type ReceivedMail, startSilentServer, startSmtpServer } from './smtp-server.ts';
export { listeningUrl, type SpawnedServer, spawnCommand, spawnServer } from './spawn-server.ts';
export { startTcpProxy } from './tcp-proxy.ts';
export {
  buildTestApp,
  createTestKeyValueStore,
  type FakeClock,
  fakeClock,
  sharedRedisEnv,
  startTestServer,
  storedKeys,
  type TestApp,
  type TestAppOptions,
  testConfig,
} from './test-app.ts';
export { holdConnection, until, untilWaitingOnLocks, whileHolding } from './until.ts';
