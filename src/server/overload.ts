/**
 * The overload manager: a cap on request-body bytes in flight, in total and per client, so that a burst of
 * maximum-size requests cannot take the process out of memory. A request declares its size
 * (`content-length`) and reserves it before a byte of its body is read; a chunked body reserves as it
 * arrives. Over a cap the request gets 529 `overloaded_error` with `retry-after` (Claude Code retries it),
 * having read nothing. Reservations are given back once the body, its text and its parsed form are
 * released (the request was forwarded, or refused).
 *
 * A body costs about 4× its bytes while it is handled (the Buffer, its decoded string, the parsed object,
 * a rewritten copy), so peak memory for bodies is about 4 × `limits.max_inflight_body_bytes` above the
 * idle process (measured in bench/, "memory cap").
 */
import { OverloadedError } from '../errors.js';

const mb = (n: number) => `${Math.round((n / 1048576) * 10) / 10} MB`;

/** Bytes reserved by requests being received or handled, in total and per client id. */
export class InflightBytes {
  total = 0;
  private readonly perClient = new Map<string, number>();

  /**
   * Reserves `n` bytes for `client`.
   * @throws OverloadedError (529) when the total or the client's share would go over its cap; nothing is reserved then.
   */
  reserve(client: string, n: number, caps: { total: number; perClient: number }): void {
    const mine = this.perClient.get(client) ?? 0;
    if (mine + n > caps.perClient && mine > 0) {
      throw new OverloadedError(`this client has ${mb(mine)} of request bodies in flight, its limit is ${mb(caps.perClient)} (limits.max_inflight_body_bytes_per_client); retry shortly`);
    }
    if (this.total + n > caps.total && this.total > 0) {
      throw new OverloadedError(`switchyard is holding ${mb(this.total)} of request bodies, its limit is ${mb(caps.total)} (limits.max_inflight_body_bytes); retry shortly`);
    }
    this.total += n;
    this.perClient.set(client, mine + n);
  }

  /**
   * A reservation for one body whose size grows as its bytes arrive (a chunked body declares none):
   * `growTo(size)` holds `size` bytes in all for `client` (529 when a cap would be passed; nothing more is held
   * then), `release()` gives back all it holds. What the receive stage and the app routes' bodies both use.
   */
  reservation(client: string, caps: { total: number; perClient: number }): { growTo(size: number): void; release(): void } {
    let held = 0;
    return {
      growTo: (size) => {
        // Stryker disable next-line EqualityOperator: equivalent — growing to the size held reserves 0 bytes.
        if (size <= held) return;
        this.reserve(client, size - held, caps);
        held = size;
      },
      release: () => {
        this.release(client, held);
        held = 0;
      },
    };
  }

  /** Gives back `n` bytes of `client`. */
  release(client: string, n: number): void {
    // Stryker disable next-line ConditionalExpression: equivalent — giving back 0 bytes changes nothing either way.
    if (n === 0) return;
    this.total -= n;
    const left = (this.perClient.get(client) ?? n) - n;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent where a share of 0 (or less) is kept — a share of 0 or less admits the next body as no share does.
    if (left <= 0) this.perClient.delete(client);
    else this.perClient.set(client, left);
  }
}
