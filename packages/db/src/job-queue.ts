/**
 * The schema the job queue (pg-boss) keeps its jobs in: the server installs it at start
 * (apps/server/src/infra/jobs.ts), `db:reset` drops it with the tables its jobs name.
 */
export const JOBS_SCHEMA = 'pgboss';
