"""
limits.py: Airbyte's limits, for the stand-in (test/airbyte_standin.py).

Two modes a test switches on and off through the control API:

  rate limit   a fixed number of API requests per second is served; any
               request beyond it is answered 429 with Airbyte's real body
               {"message": "You are being rate limited."} and no
               Retry-After, as Airbyte Cloud does.  The limit is a token
               bucket refilled at the rate and holding one second's worth,
               so a client at exactly the rate is never refused; a 429
               costs no token.
  revoked      the API token is revoked: every API request is answered
               401 until the mode is switched off (the token restored).

Control routes (no auth):
  POST /_control/limits   {"rate_limit": N (requests/s, 0 = off),
                           "revoked": true | false}   (fields optional)
                          -> the current modes and counters
  GET  /_control/limits   the same

Counters (also in GET /_control/counters under "limits"): requests
answered 429 by the rate limit ("rate_limited"), answered 401 while
revoked ("revoked"), and served through the rate limit ("admitted").
/_control/reset switches both modes off and zeroes the counters;
/_control/reset_counters zeroes the counters only.

Python standard library only.
"""

import threading
import time

_lock = threading.Lock()
_state = {}


def reset():
    with _lock:
        _state.clear()
        _state.update(rate_limit=0.0, revoked=False, tokens=0.0, refilled=time.monotonic(),
                      rate_limited=0, revoked_answers=0, admitted=0)


def reset_counters():
    with _lock:
        _state.update(rate_limited=0, revoked_answers=0, admitted=0)


def counters():
    with _lock:
        return {"limits": {"rate_limit": _state["rate_limit"], "revoked": _state["revoked"],
                           "rate_limited": _state["rate_limited"],
                           "revoked_answers": _state["revoked_answers"],
                           "admitted": _state["admitted"]}}


def configure(body):
    """POST /_control/limits"""
    with _lock:
        if isinstance(body, dict):
            if "rate_limit" in body:
                _state["rate_limit"] = float(body["rate_limit"] or 0)
                _state["tokens"] = _state["rate_limit"]
                _state["refilled"] = time.monotonic()
            if "revoked" in body:
                _state["revoked"] = bool(body["revoked"])
    return counters()["limits"]


def refuse(handler, route):
    """
    The hook, called for every API request before it is served: True when
    this module answered it (401 while revoked, 429 beyond the rate).
    """
    if route in ("POST /auth/vendor",) or route.startswith("GET /frontegg/"):
        return False
    with _lock:
        if _state["revoked"]:
            _state["revoked_answers"] += 1
            verdict = 401
        elif _state["rate_limit"] > 0:
            now = time.monotonic()
            rate = _state["rate_limit"]
            _state["tokens"] = min(rate, _state["tokens"] + (now - _state["refilled"]) * rate)
            _state["refilled"] = now
            if _state["tokens"] >= 1.0:
                _state["tokens"] -= 1.0
                _state["admitted"] += 1
                verdict = None
            else:
                _state["rate_limited"] += 1
                verdict = 429
        else:
            verdict = None
    if verdict == 401:
        handler.send_error_body(401, "unauthorized", "Invalid or expired bearer token.")
        return True
    if verdict == 429:
        handler.send_json(429, {"message": "You are being rate limited."})
        return True
    return False


reset()
