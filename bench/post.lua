-- wrk script: POST the signed body; print a JSON summary with tail latencies.
-- Environment: BODY_FILE, SIG_HEADER, SIG_VALUE; optional XFF_FLOOD=1 gives each request a new
-- X-Forwarded-For address and FLOOD_COUNT stops each thread after that many requests;
-- EVENT_IDS=<run tag> gives each request its own X-Event-Id (a new dedup key every time).

local body_file = os.getenv("BODY_FILE")
local f = assert(io.open(body_file, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local sig_header = os.getenv("SIG_HEADER")
if sig_header and sig_header ~= "" then
  wrk.headers[sig_header] = os.getenv("SIG_VALUE")
end

local flood = os.getenv("XFF_FLOOD") == "1"
local event_ids = os.getenv("EVENT_IDS")
if event_ids == "" then event_ids = nil end
local flood_count = tonumber(os.getenv("FLOOD_COUNT") or "0")
local sent = 0
local seen = 0
local thread_id = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function request()
  if flood then
    sent = sent + 1
    -- 2001:db8:<thread>:<counter>: a new address per request, as an IPv6 attacker can.
    local xff = string.format("2001:db8:%x::%x:%x", thread_id, math.floor(sent / 65536), sent % 65536)
    return wrk.format(nil, nil, { ["X-Forwarded-For"] = xff })
  end
  if event_ids then
    sent = sent + 1
    -- wrk.format uses the given headers instead of wrk.headers: copy them.
    local h = {}
    for k, v in pairs(wrk.headers) do h[k] = v end
    h["X-Event-Id"] = string.format("%s-%d-%d", event_ids, thread_id, sent)
    return wrk.format(nil, nil, h)
  end
  return wrk.format()
end

function response(status, headers, body)
  if flood then
    seen = seen + 1
    if flood_count > 0 and seen >= flood_count then
      wrk.thread:stop()
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
