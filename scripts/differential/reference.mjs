// Differential signature test, Node side: the twilio npm library on the cases the Rust test
// generates (JSON lines on stdin, one result line per case on stdout).
import { answerEachCase, toObject, twilio } from './twilio.mjs';

await answerEachCase((c) => {
  const params = toObject(c.params);
  const tampered = toObject(c.tampered_params);
  return {
    signature: twilio.getExpectedTwilioSignature(c.token, c.url, params),
    accepts_ours: twilio.validateRequest(c.token, c.ours, c.url, params),
    accepts_tampered: twilio.validateRequest(c.token, c.ours, c.url, tampered),
    variant_accepts_ours: c.port_variant_url ? twilio.validateRequest(c.token, c.ours, c.port_variant_url, params) : null,
  };
});
