"""Signs and verifies webhooks with the providers' official Python SDKs, for tests/it/interop.rs.

    interop.py sign   < {"secrets": {scheme: secret}, "body": str}
        prints [{"scheme", "sdk", "headers": {name: value}, "body"}] signed now
    interop.py verify < {"secrets": {scheme: secret}, "requests": [{"scheme", "headers", "body"}]}
        prints [{"scheme", "sdk", "accepted": bool, "error": str | null}] checked now
    interop.py doctor < {"secrets": {scheme: secret}, "retired": {scheme: secret}, "body": str}
        prints [{"case", "scheme", "sdk", "headers", "body", "expect"}]: requests signed by the SDKs
        and then altered the way senders, frameworks and proxies alter them, each with the
        diagnosis the signature doctor should give
"""

import json
import sys
import uuid
from datetime import datetime, timezone

import slack_sdk
import standardwebhooks
import stripe
import svix
from slack_sdk.signature import SignatureVerifier
from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook


def sdk(module, name):
    return f"{name}(PyPI)@{getattr(module, '__version__', getattr(module, 'VERSION', '?'))}"


def sign(secrets, body):
    now = datetime.now(tz=timezone.utc)
    ts = str(int(now.timestamp()))
    out = []

    msg_id = f"msg_{uuid.uuid4().hex}"
    sig = StandardWebhook(secrets["standard-webhooks"]).sign(msg_id, now, body)
    out.append({
        "scheme": "standard-webhooks",
        "sdk": sdk(standardwebhooks, "standardwebhooks"),
        "headers": {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig},
    })

    msg_id = f"msg_{uuid.uuid4().hex}"
    sig = SvixWebhook(secrets["svix"]).sign(msg_id, now, body)
    out.append({
        "scheme": "svix",
        "sdk": sdk(svix, "svix"),
        "headers": {"svix-id": msg_id, "svix-timestamp": ts, "svix-signature": sig},
    })

    header = stripe.WebhookSignature.generate_signature_header(body, secrets["stripe"])
    out.append({
        "scheme": "stripe",
        "sdk": sdk(stripe, "stripe"),
        "headers": {"Stripe-Signature": header},
    })

    sig = SignatureVerifier(secrets["slack"]).generate_signature(timestamp=ts, body=body)
    out.append({
        "scheme": "slack",
        "sdk": sdk(slack_sdk.version, "slack_sdk"),
        "headers": {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig},
    })

    for request in out:
        request["body"] = body
    return out


def verify_one(secrets, scheme, headers, body):
    """(sdk, accepted, error) for one request, checked by the scheme's official verifier."""
    secret = secrets[scheme]
    try:
        if scheme == "standard-webhooks":
            StandardWebhook(secret).verify(body, headers)
            return sdk(standardwebhooks, "standardwebhooks"), True, None
        if scheme == "svix":
            SvixWebhook(secret).verify(body, headers)
            return sdk(svix, "svix"), True, None
        if scheme == "stripe":
            header = {k.lower(): v for k, v in headers.items()}["stripe-signature"]
            stripe.WebhookSignature.verify_header(body, header, secret, tolerance=300)
            return sdk(stripe, "stripe"), True, None
        if scheme == "slack":
            ok = SignatureVerifier(secret).is_valid_request(body, headers)
            return sdk(slack_sdk.version, "slack_sdk"), ok, None if ok else "is_valid_request returned False"
    except Exception as e:  # the SDKs signal a refusal by raising
        return scheme, False, f"{type(e).__name__}: {e}"
    raise SystemExit(f"no Python SDK for scheme {scheme}")


def doctor(secrets, retired, body):
    now = int(datetime.now(tz=timezone.utc).timestamp())
    stripe_sdk = sdk(stripe, "stripe")
    sign_stripe = stripe.WebhookSignature.generate_signature_header
    out = []

    def case(name, scheme, sdk_name, headers, sent, expect):
        out.append({"case": name, "scheme": scheme, "sdk": sdk_name, "headers": headers,
                    "body": sent, "expect": expect})

    header = {"Stripe-Signature": sign_stripe(body, secrets["stripe"])}
    # A framework parsed the JSON and wrote it again: Python's json.dumps with indent=2
    # (which also escapes non-ASCII as \u).
    case("reserialized", "stripe", stripe_sdk, header,
         json.dumps(json.loads(body), indent=2), "body_altered:json_reserialized")
    # A proxy or a script added a newline.
    case("newline", "stripe", stripe_sdk, header, body + "\n", "body_altered:trailing_newline_added")
    # Signed 400 s ago: a slow queue, a retry or a wrong clock.
    case("old", "stripe", stripe_sdk,
         {"Stripe-Signature": sign_stripe(body, secrets["stripe"], timestamp=now - 400)},
         body, "clock_skew:-400")
    # The sender still has the secret that was rotated out.
    case("retired", "stripe", stripe_sdk,
         {"Stripe-Signature": sign_stripe(body, retired["stripe"])}, body, "retired_secret:old")
    # Standard Webhooks keyed with the secret's text, without its base64 layer (the SDK takes
    # bytes as the raw key).
    msg_id = f"msg_{uuid.uuid4().hex}"
    ts = datetime.fromtimestamp(now, tz=timezone.utc)
    sig = StandardWebhook(secrets["standard-webhooks"].encode()).sign(msg_id, ts, body)
    case("raw-secret", "standard-webhooks", sdk(standardwebhooks, "standardwebhooks"),
         {"webhook-id": msg_id, "webhook-timestamp": str(now), "webhook-signature": sig},
         body, "secret_encoding")
    return out


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    request = json.load(sys.stdin)
    if mode == "sign":
        result = sign(request["secrets"], request["body"])
    elif mode == "doctor":
        result = doctor(request["secrets"], request["retired"], request["body"])
    elif mode == "verify":
        result = []
        for r in request["requests"]:
            name, accepted, error = verify_one(request["secrets"], r["scheme"], r["headers"], r["body"])
            result.append({"scheme": r["scheme"], "sdk": name, "accepted": accepted, "error": error})
    else:
        raise SystemExit("usage: interop.py sign|verify|doctor < request.json")
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
