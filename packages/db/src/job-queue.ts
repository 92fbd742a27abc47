/**
 * The schema the job queue (pg-boss) keeps its jobs in: the server installs it at start
 * (apps/server/src/infra/jobs.ts); `db:reset` empties its jobs with the tables they name.
 */
export const JOBS_SCHEMA = 'pgboss';
