// Differential signature test, Node side: the twilio npm library on the cases the Rust test
// generates (JSON lines on stdin, one result line per case on stdout).
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
  const tampered = toObject(c.tampered_params);
  out.push(JSON.stringify({
    signature: twilio.getExpectedTwilioSignature(c.token, c.url, params),
    accepts_ours: twilio.validateRequest(c.token, c.ours, c.url, params),
    accepts_tampered: twilio.validateRequest(c.token, c.ours, c.url, tampered),
    variant_accepts_ours: c.port_variant_url ? twilio.validateRequest(c.token, c.ours, c.port_variant_url, params) : null,
  }));
}
process.stdout.write(out.join('\n') + '\n');
