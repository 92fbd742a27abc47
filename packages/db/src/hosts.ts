import { isIP } from 'node:net';

/** This machine only: `localhost`, `::1` or an IPv4 address in 127/8 (never a name like 127.0.0.1.example.com). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** A URL on this machine (`http://127.0.0.1:8080`, `http://[::1]/`). */
export function isLoopbackUrl(url: string): boolean {
  return isLoopback(new URL(url).hostname.replace(/^\[(.*)\]$/, '$1'));
}
