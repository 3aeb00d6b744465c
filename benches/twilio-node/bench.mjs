// The official twilio npm library on the same inputs as the Rust criterion benchmarks
// (crates/twiml-fallback/benches/fixtures/bench-inputs.json). Run by
// benches/compare-twilio-node.sh; prints one JSON object with nanoseconds per call.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(process.env.TWILIO_REFERENCE_NODE_MODULES + '/');
const twilio = require('twilio');
const fixture = JSON.parse(readFileSync(process.argv[2], 'utf8'));

function toObject(pairs) {
  const params = {};
  for (const [key, value] of pairs) {
    params[key] = key in params ? [].concat(params[key], value) : value;
  }
  return params;
}

function measure(fn, iterations) {
  for (let i = 0; i < Math.min(iterations, 20000); i++) fn();
  const rounds = [];
  for (let round = 0; round < 7; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    rounds.push(Number(process.hrtime.bigint() - start) / iterations);
  }
  rounds.sort((a, b) => a - b);
  return rounds[3];
}

const forged = 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=';
const result = { node: process.version, twilio: require('twilio/package.json').version };
let sink = 0;
for (const name of ['sms_fallback', 'design_vector']) {
  const { token, url } = fixture[name];
  const params = toObject(fixture[name].params);
  const signature = twilio.getExpectedTwilioSignature(token, url, params);
  if (!twilio.validateRequest(token, signature, url, params)) throw new Error('valid signature rejected');
  if (twilio.validateRequest(token, forged, url, params)) throw new Error('forged signature accepted');
  result[name] = {
    signature,
    validateRequest_valid_ns: measure(() => { sink += twilio.validateRequest(token, signature, url, params) ? 1 : 0; }, 100000),
    validateRequest_forged_ns: measure(() => { sink += twilio.validateRequest(token, forged, url, params) ? 1 : 0; }, 20000),
    getExpectedTwilioSignature_ns: measure(() => { sink += twilio.getExpectedTwilioSignature(token, url, params).length; }, 100000),
  };
}
result.messagingResponse_toString_ns = measure(() => {
  const response = new twilio.twiml.MessagingResponse();
  response.message(fixture.message);
  sink += response.toString().length;
}, 100000);
if (sink === 0) throw new Error('nothing measured');
console.log(JSON.stringify(result));
