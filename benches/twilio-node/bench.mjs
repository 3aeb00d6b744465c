// The official twilio npm library on the same inputs as the Rust criterion benchmarks
// (crates/twiml-fallback/benches/fixtures/sms-fallback-request.json). Run by
// benches/compare-twilio-node.sh; prints one JSON object with nanoseconds per call.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(process.env.TWILIO_NODE_DIR + '/');
const twilio = require('twilio');
const fixture = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const params = {};
for (const [key, value] of fixture.params) {
  if (key in params) {
    params[key] = [].concat(params[key], value);
  } else {
    params[key] = value;
  }
}
const { token, url, message } = fixture;
const signature = twilio.getExpectedTwilioSignature(token, url, params);
const forged = 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=';
if (!twilio.validateRequest(token, signature, url, params)) throw new Error('valid signature rejected');
if (twilio.validateRequest(token, forged, url, params)) throw new Error('forged signature accepted');

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

let sink = 0;
const result = {
  node: process.version,
  twilio: require('twilio/package.json').version,
  validateRequest_valid_ns: measure(() => { sink += twilio.validateRequest(token, signature, url, params) ? 1 : 0; }, 100000),
  validateRequest_forged_ns: measure(() => { sink += twilio.validateRequest(token, forged, url, params) ? 1 : 0; }, 20000),
  getExpectedTwilioSignature_ns: measure(() => { sink += twilio.getExpectedTwilioSignature(token, url, params).length; }, 100000),
  messagingResponse_toString_ns: measure(() => {
    const response = new twilio.twiml.MessagingResponse();
    response.message(message);
    sink += response.toString().length;
  }, 100000),
};
if (sink === 0) throw new Error('nothing measured');
console.log(JSON.stringify(result));
