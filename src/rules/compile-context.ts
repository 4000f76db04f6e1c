/**
 * What a compile step (an action's, a matcher's, a JSONata expression's) can see and report into while a
 * rule set loads. Lives with the rules engine; action modules receive it.
 */
import type { DocPath } from '../validation.js';

/** What an action's compile step can see and report into. */
export interface CompileContext {
  /** Names of the providers defined in the gateway config. */
  providers: ReadonlySet<string>;
  /**
   * Reports a load error at `subpath`, relative to the action's parameters (or to `match` for matchers);
   * `offset` is a character index into that string value, when known.
   */
  error(subpath: DocPath, message: string, offset?: number): void;
  /** Reports a non-fatal finding at `subpath` (shown by validate-rules and logged at load). */
  warning?(subpath: DocPath, message: string): void;
  /** Time budget of one JSONata evaluation, ms (default `DEFAULT_EXPRESSION_MS`). */
  expressionMs?: number;
}
