// Replay's signatures, checked by the official twilio npm library: the requests the end-to-end
// replay table's app received (JSON lines on stdin: token, url, params as [key, value] pairs in
// order, signature), one result line per request on stdout: whether validateRequest accepts its
// X-Twilio-Signature, and the signature twilio-node expects.
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';

const require = createRequire(process.env.TWILIO_REFERENCE_NODE_MODULES + '/');
const twilio = require('twilio');

function toObject(pairs) {
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

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
const out = [];
for await (const line of lines) {
  if (!line) continue;
  const c = JSON.parse(line);
  const params = toObject(c.params);
  out.push(JSON.stringify({
    valid: twilio.validateRequest(c.token, c.signature, c.url, params),
    expected: twilio.getExpectedTwilioSignature(c.token, c.url, params),
  }));
}
process.stdout.write(out.join('\n') + '\n');
