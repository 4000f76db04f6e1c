/**
 * Reused buffers for request bodies. A body that arrives in more than one read is joined into one buffer; a new
 * 76 KB buffer per request costs an allocation, page faults on memory the allocator just gave back to the kernel,
 * and its freeing in the next scavenge — on a VM more CPU than the rest of the request (README, Benchmarks). The
 * pool keeps freed body buffers in size classes (powers of two, 64 KiB to 4 MiB, at most 16 MiB idle) and hands them out again.
 *
 * A buffer goes back only when nothing can still use its bytes:
 * - JavaScript: the exchange gives it back when it drops the body (`Exchange.dropBody`), after which nothing reads
 *   the body or a view of it (test/upstream-client.test.ts holds a WeakRef to the body while a stream is open);
 * - sockets: an upstream may answer before it has read the whole request, and a socket write in progress still
 *   reads the buffer. Every upstream socket a pooled buffer was written to is noted (undici's
 *   `undici:client:sendHeaders` diagnostics channel, whose message is `{ request, headers, socket }`:
 *   https://undici.nodejs.org/#/docs/api/DiagnosticsChannel and undici's types/diagnostics-channel.d.ts), and a
 *   buffer whose socket still has bytes to write (`writableLength > 0`, not destroyed) is left to the garbage
 *   collector instead. Which body a request carries is undici's `request.body`, a field its typed message leaves
 *   out: test/body-pool.test.ts (an upstream that answers before reading) fails if an undici upgrade drops it.
 */
import diagnostics from 'node:diagnostics_channel';
import type { Socket } from 'node:net';

/** Smallest size class, bytes. */
const MIN_CLASS = 64 * 1024;

/** The upstream sockets each pooled buffer was handed to (keyed by its ArrayBuffer); present only for pooled ones. */
const writtenTo = new WeakMap<ArrayBufferLike, Socket[]>();
/**
 * A streaming call's one-chunk iterable body → the socket list of the buffer it yields (client.ts
 * `releasingBody`); the list, not the buffer, so that the iterable undici keeps does not keep the body.
 */
const iterableBodies = new WeakMap<object, Socket[]>();

diagnostics.subscribe('undici:client:sendHeaders', (message) => {
  const { request, socket } = message as { request: { body?: unknown }; socket: Socket };
  const body = request.body;
  if (body && typeof body === 'object') (Buffer.isBuffer(body) ? writtenTo.get(body.buffer) : iterableBodies.get(body))?.push(socket);
});

/** Notes that `iterable` (a request body undici will write) yields `buf`, so that its socket is noted too. */
export function noteIterableBody(iterable: object, buf: Buffer): void {
  const sockets = writtenTo.get(buf.buffer);
  if (sockets) iterableBodies.set(iterable, sockets);
}

/** True while a socket `buf` was written to may still read it (bytes left to write, socket open). */
function stillWritten(ab: ArrayBufferLike): boolean {
  for (const s of writtenTo.get(ab) ?? []) if (!s.destroyed && s.writableLength > 0) return true;
  return false;
}

/** Size class of a body of `size` bytes: the next power of two from {@link MIN_CLASS}. */
function classOf(size: number): number {
  return size <= MIN_CLASS ? MIN_CLASS : 2 ** Math.ceil(Math.log2(size));
}

/** Buffers for request bodies, reused once given back. One per process ({@link bodyPool}). */
export class BodyPool {
  /**
   * @param maxClassBytes largest size class (a body over it gets a buffer of its own), bytes
   * @param maxFreeBytes free buffers kept in all classes together (what the pool may hold while idle), bytes
   */
  constructor(
    private readonly maxClassBytes = 4 * 1024 * 1024,
    private readonly maxFreeBytes = 16 * 1024 * 1024,
  ) {}

  private readonly free = new Map<number, ArrayBuffer[]>();
  private freeBytes = 0;
  /** Buffers handed out from the free lists, new ones made, given back and kept, given back and left (still written). */
  readonly stats = { reused: 0, made: 0, kept: 0, left: 0 };

  /** A buffer of exactly `size` bytes (uninitialized), pooled when `size` is within the classes. */
  take(size: number): Buffer {
    if (size > this.maxClassBytes) return Buffer.allocUnsafe(size);
    const cls = classOf(size);
    let ab = this.free.get(cls)?.pop();
    if (ab) {
      this.freeBytes -= cls;
      this.stats.reused++;
    } else {
      ab = Buffer.allocUnsafeSlow(cls).buffer as ArrayBuffer;
      this.stats.made++;
    }
    writtenTo.set(ab, []);
    return Buffer.from(ab, 0, size);
  }

  /** Gives back a buffer from {@link take} (others are ignored); it may be handed out again at once. */
  give(buf: Buffer): void {
    const ab = buf.buffer;
    if (!writtenTo.has(ab)) return;
    const still = stillWritten(ab);
    writtenTo.delete(ab);
    const cls = ab.byteLength;
    if (still || this.freeBytes + cls > this.maxFreeBytes) {
      this.stats.left++;
      return;
    }
    let list = this.free.get(cls);
    if (!list) this.free.set(cls, (list = []));
    list.push(ab as ArrayBuffer); // one of take's: writtenTo holds no other
    this.freeBytes += cls;
    this.stats.kept++;
  }
}

/** The process's body pool. */
export const bodyPool = new BodyPool();
