/**
 * The ledger's disk spool: usage records the store could not take in time — the in-memory queue filled
 * during an outage, or the gateway shut down with records still queued — are appended here as JSON lines
 * and replayed into the store once it answers again, at the next start at the latest. Bounded by
 * `max_bytes`; past it, records are dropped and counted (logged). Replays are safe to repeat: the stores'
 * inserts ignore a request id they already hold.
 *
 * Files: `<dir>/spool-<pid>-<n>.jsonl` being written; a replay first renames a file to `*.replaying`, so
 * records spooled meanwhile go to a new file and nothing is truncated under a writer.
 */
import { appendFileSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, createReadStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { UsageRecord } from './record.js';

/** Default bound of the spool directory, bytes. */
export const DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024;

export class Spool {
  private file: string;
  private seq = 0;
  /** Records written to the spool since start. */
  spooled = 0;
  /** Records dropped because the spool was full or could not be written. */
  dropped = 0;

  /** @param dir created when missing. @throws when it cannot be created. */
  constructor(
    readonly dir: string,
    private readonly maxBytes = DEFAULT_SPOOL_MAX_BYTES,
  ) {
    mkdirSync(dir, { recursive: true });
    this.file = this.nextFile();
  }

  private nextFile(): string {
    return path.join(this.dir, `spool-${process.pid}-${Date.now()}-${this.seq++}.jsonl`);
  }

  private files(): string[] {
    try {
      return readdirSync(this.dir)
        .filter((f) => f.startsWith('spool-') && (f.endsWith('.jsonl') || f.endsWith('.replaying')))
        .map((f) => path.join(this.dir, f));
    } catch {
      return [];
    }
  }

  /** Bytes held in the spool. */
  bytes(): number {
    let n = 0;
    for (const f of this.files()) {
      try {
        n += statSync(f).size;
      } catch {
        // removed meanwhile
      }
    }
    return n;
  }

  /** True when spooled records wait to be replayed. */
  pending(): boolean {
    return this.files().length > 0;
  }

  /** Appends records (one synchronous write). Returns false, counting them dropped, when over the bound or on a write error. */
  write(records: UsageRecord[]): boolean {
    if (records.length === 0) return true;
    const text = records.map((r) => JSON.stringify(r)).join('\n') + '\n';
    if (this.bytes() + Buffer.byteLength(text) > this.maxBytes) {
      this.dropped += records.length;
      return false;
    }
    try {
      appendFileSync(this.file, text);
    } catch {
      this.dropped += records.length;
      return false;
    }
    this.spooled += records.length;
    return true;
  }

  /**
   * Replays every spool file into `insert`, in batches; a file is removed once all of it was inserted.
   * Stops at the first failed batch (the file stays for the next replay).
   * @returns records replayed.
   */
  async replay(insert: (batch: UsageRecord[]) => Promise<void>, batchSize = 500): Promise<number> {
    this.file = this.nextFile(); // later writes go to a new file
    let replayed = 0;
    for (const f of this.files()) {
      const replaying = f.endsWith('.replaying') ? f : `${f}.replaying`;
      if (replaying !== f) renameSync(f, replaying);
      const lines = createInterface({ input: createReadStream(replaying, 'utf8'), crlfDelay: Infinity });
      let batch: UsageRecord[] = [];
      for await (const line of lines) {
        if (!line.trim()) continue;
        try {
          batch.push(JSON.parse(line) as UsageRecord);
        } catch {
          continue; // a line cut by a crash mid-write: skip it
        }
        if (batch.length >= batchSize) {
          await insert(batch);
          replayed += batch.length;
          batch = [];
        }
      }
      if (batch.length) {
        await insert(batch);
        replayed += batch.length;
      }
      rmSync(replaying, { force: true });
    }
    return replayed;
  }
}
