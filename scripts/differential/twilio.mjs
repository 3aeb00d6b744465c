// What the Node-side checks share: the official twilio npm library (from
// TWILIO_REFERENCE_NODE_MODULES), parameters as twilio-node takes them, and the JSON-lines cases
// the Rust tests write on stdin.
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';

const require = createRequire(process.env.TWILIO_REFERENCE_NODE_MODULES + '/');
export const twilio = require('twilio');

// [key, value] pairs in order as twilio-node's object: a repeated key holds every value, in order.
export function toObject(pairs) {
  const params = {};
  for (const [key, value] of pairs) {
    if (Object.prototype.hasOwnProperty.call(params, key)) {
      params[key] = [].concat(params[key], value);
    } else {
      params[key] = value;
    }
  }
  return params;
}

// Every case on stdin (one JSON object per line), then one result line per case on stdout.
export async function answerEachCase(answer) {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const out = [];
  for await (const line of lines) {
    if (!line) continue;
    out.push(JSON.stringify(answer(JSON.parse(line))));
  }
  process.stdout.write(out.join('\n') + '\n');
}
