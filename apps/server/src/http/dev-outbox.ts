import type { FastifyInstance } from 'fastify';
import type { OutboxTransport } from '../infra/mail/index.ts';
import { escapeHtml } from '../infra/mail/templates.ts';

/**
 * The development outbox in a browser: /dev/outbox lists the emails the app "sent",
 * newest first; each opens as it would in a mail client. Registered only outside
 * production, when no email provider is configured.
 */
export async function devOutboxRoutes(app: FastifyInstance, { outbox }: { outbox: OutboxTransport }) {
  app.get('/dev/outbox', async (_request, reply) => {
    const entries = await outbox.list();
    const rows = entries
      .map(
        (e) =>
          `<tr><td>${escapeHtml(e.sentAt)}</td><td>${escapeHtml(e.to)}</td><td><a href="/dev/outbox/${e.id}">${escapeHtml(e.subject)}</a></td>` +
          `<td>${escapeHtml(e.template)}</td><td><a href="/dev/outbox/${e.id}/text">text</a></td></tr>`,
      )
      .join('\n');
    const body =
      entries.length === 0
        ? '<p>No emails yet.</p>'
        : `<table><thead><tr><th>Sent</th><th>To</th><th>Subject</th><th>Template</th><th></th></tr></thead><tbody>${rows}</tbody></table>`;
    reply.type('text/html; charset=utf-8');
    return `<!doctype html><html><head><meta charset="utf-8"><title>Outbox</title>
<style>body{font:15px system-ui,sans-serif;margin:2rem;color:#1f2328}table{border-collapse:collapse}td,th{padding:.4rem .8rem;border-bottom:1px solid #d0d7de;text-align:left}</style>
</head><body><h1>Development outbox</h1><p>${entries.length} email(s) in ${escapeHtml(outbox.dir)}</p>${body}</body></html>`;
  });

  app.get<{ Params: { id: string } }>('/dev/outbox/:id', async (request, reply) => {
    const html = await outbox.read(request.params.id, 'html');
    if (html === undefined) return reply.callNotFound();
    return reply.type('text/html; charset=utf-8').send(html);
  });

  app.get<{ Params: { id: string } }>('/dev/outbox/:id/text', async (request, reply) => {
    const text = await outbox.read(request.params.id, 'txt');
    if (text === undefined) return reply.callNotFound();
    return reply.type('text/plain; charset=utf-8').send(text);
  });
}
