import { describeDatabaseUrl } from './client.ts';
import { type EmbeddedPostgres, startEmbeddedPostgres } from './embedded.ts';

export interface DatabaseTarget {
  url: string;
  /** Set when the URL points at an embedded cluster this process started or attached to. */
  embedded: EmbeddedPostgres | undefined;
  /** Host, port and database, without credentials. */
  description: string;
}

/** DATABASE_URL when given, else the embedded development cluster in `embeddedDataDir`. */
export async function resolveDatabase(options: {
  url: string | undefined;
  embeddedDataDir: string;
  log?: (message: string) => void;
}): Promise<DatabaseTarget> {
  if (options.url) return { url: options.url, embedded: undefined, description: describeDatabaseUrl(options.url) };
  const started = performance.now();
  const embedded = await startEmbeddedPostgres({ dataDir: options.embeddedDataDir, log: options.log });
  const how = embedded.owned ? `ready in ${Math.round(performance.now() - started)} ms` : 'attached';
  return {
    url: embedded.url,
    embedded,
    description: `embedded Postgres on port ${embedded.port}, ${how} (${options.embeddedDataDir})`,
  };
}
