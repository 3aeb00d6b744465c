// Replay's signatures, checked by the official twilio npm library: the requests the end-to-end
// replay table's app received (JSON lines on stdin: token, url, params as [key, value] pairs in
// order, signature), one result line per request on stdout: whether validateRequest accepts its
// X-Twilio-Signature, and the signature twilio-node expects.
import { answerEachCase, toObject, twilio } from './twilio.mjs';

await answerEachCase((c) => {
  const params = toObject(c.params);
  return {
    valid: twilio.validateRequest(c.token, c.signature, c.url, params),
    expected: twilio.getExpectedTwilioSignature(c.token, c.url, params),
  };
});
