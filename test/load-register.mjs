// `node --import ./test/load-register.mjs …`: records every ES module the process loads (test/load-hooks.mjs).
import { register } from 'node:module';

register(new URL('./load-hooks.mjs', import.meta.url));
