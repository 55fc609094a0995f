-- wrk script for bench/doctor.py: a burst of forged webhooks. Every request carries the body of
-- BODY_FILE and SIG_HEADER: SIG_VALUE (a signature that does not verify); each thread stops after
-- FORGE_COUNT answers.

local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers[os.getenv("SIG_HEADER")] = os.getenv("SIG_VALUE")

local count = tonumber(os.getenv("FORGE_COUNT") or "1000")
local seen = 0

function response(status, headers, body)
  seen = seen + 1
  if seen >= count then
    wrk.thread:stop()
  end
end
