// The comparator for benches/worker-load.sh: the Fallback URL as a Cloudflare user would write it by
// hand in JavaScript — WebCrypto HMAC-SHA1 check of X-Twilio-Signature against the request URL, the
// channel from the parameters, template TwiML, and the same JSON log line as the Rust Worker's
// (minus `error_title`, which needs Twilio's error table). Not part of the product.
const encoder = new TextEncoder();
let keyPromise;

function hmacKey(token) {
  keyPromise ??= crypto.subtle.importKey("raw", encoder.encode(token), { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
  return keyPromise;
}

function base64(bytes) {
  let binary = "";
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function escapeXml(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]);
}

function timingSafeEqual(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

async function validSignature(token, url, params, signature) {
  if (!signature || !token) return false;
  // Twilio's rule: the full URL, then each POST parameter's name and value, sorted by name.
  let data = url;
  if (params) {
    for (const name of [...new Set(params.keys())].sort()) {
      for (const value of params.getAll(name).sort()) data += name + value;
    }
  }
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(token), encoder.encode(data));
  return timingSafeEqual(base64(mac), signature);
}

const twiml = (inner) => new Response(`<?xml version="1.0" encoding="UTF-8"?><Response>${inner}</Response>`, {
  headers: { "Content-Type": "text/xml; charset=utf-8" },
});

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    let params;
    try {
      params = request.method === "POST" ? new URLSearchParams(await request.text()) : url.searchParams;
    } catch {
      params = new URLSearchParams();
    }
    const signed = await validSignature(env.TWILIO_AUTH_TOKEN, request.url, request.method === "POST" ? params : null,
      request.headers.get("X-Twilio-Signature"));
    const record = { time: new Date().toISOString(), event: "fallback", status: 200, method: request.method, path: url.pathname };
    if (!signed) {
      console.log(JSON.stringify({ ...record, event: "forbidden", status: 403, signature: "mismatch", answer: "forbidden" }));
      return new Response("Forbidden", { status: 403 });
    }
    const channel = params.has("CallSid") ? "voice" : params.has("MessageSid") || params.has("SmsSid") ? "messaging" : null;
    console.log(JSON.stringify({
      ...record, channel, sid: params.get("CallSid") ?? params.get("MessageSid") ?? params.get("SmsSid"),
      account_sid: params.get("AccountSid"), to: params.get("To"),
      error_code: params.has("ErrorCode") ? Number(params.get("ErrorCode")) : undefined,
      error_url: params.get("ErrorUrl") ?? undefined, signature: "valid", answer: "default",
    }));
    if (channel === "voice") return twiml(`<Say>${escapeXml(env.VOICE_SAY)}</Say>`);
    if (channel === "messaging") return twiml(`<Message>${escapeXml(env.SMS_MESSAGE)}</Message>`);
    return twiml("");
  },
};
