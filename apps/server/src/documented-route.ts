import type { AppErrorCode } from './errors/index.ts';

/**
 * A plain Fastify route (not a procedure) as the OpenAPI document shows it. Each is
 * described beside its handler (src/http/) and app.ts hands the list to the document
 * builder (src/rest/openapi.ts): the transports share this type, not each other's code.
 */
export interface DocumentedRoute {
  method: 'GET' | 'POST';
  /** OpenAPI form, under /api: `/auth/oauth/{provider}/start`. */
  path: string;
  summary: string;
  description: string;
  tags: string[];
  parameters: {
    in: string;
    name: string;
    required?: boolean;
    description?: string;
    schema?: Record<string, unknown>;
  }[];
  /** A form body (Apple's POST), by field name. */
  formFields?: Record<string, string>;
  /** The success answer: a redirect. */
  redirect: { status: 302 | 303; description: string };
  errors: AppErrorCode[];
}
