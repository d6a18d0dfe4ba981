-- wrk script for tests/soak/soak.sh: classifies every response body and
-- paces each connection. Environment (read by every wrk thread):
--   SOAK_V1_MARK   text that identifies world-v1's answer, e.g. "world (127.0.0.1:7778)"
--   SOAK_V2_MARK   the same for world-v2, e.g. "earth (127.0.0.1:7779)"
--   SOAK_DELAY_MS  pause before each request of a connection (default 0)
-- At the end wrk prints one line for soak.sh to parse:
--   soak-counts v1=N v2=N other=N non200=N connect=N read=N write=N timeout=N first_bad=TEXT
-- (other: a 200 whose body is neither answer; first_bad: the first such
-- body or non-200 status, with newlines flattened, or "-").

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  n_v1, n_v2, n_other, n_non200 = 0, 0, 0, 0
  first_bad = ""
  v1_mark = os.getenv("SOAK_V1_MARK") or "world ("
  v2_mark = os.getenv("SOAK_V2_MARK") or "earth ("
  pause_ms = tonumber(os.getenv("SOAK_DELAY_MS") or "0") or 0
end

function delay()
  return pause_ms
end

local function remember(what)
  if first_bad == "" then
    first_bad = string.sub(string.gsub(what, "%s+", " "), 1, 200)
  end
end

function response(status, headers, body)
  body = body or ""
  if status ~= 200 then
    n_non200 = n_non200 + 1
    remember("status " .. status .. ": " .. body)
  elseif string.find(body, v1_mark, 1, true) then
    n_v1 = n_v1 + 1
  elseif string.find(body, v2_mark, 1, true) then
    n_v2 = n_v2 + 1
  else
    n_other = n_other + 1
    remember("body: " .. body)
  end
end

function done(summary, latency, requests)
  local v1, v2, other, non200, bad = 0, 0, 0, 0, ""
  for _, t in ipairs(threads) do
    v1 = v1 + t:get("n_v1")
    v2 = v2 + t:get("n_v2")
    other = other + t:get("n_other")
    non200 = non200 + t:get("n_non200")
    if bad == "" then
      bad = t:get("first_bad") or ""
    end
  end
  if bad == "" then
    bad = "-"
  end
  local e = summary.errors
  io.write(string.format(
    "soak-counts v1=%d v2=%d other=%d non200=%d connect=%d read=%d write=%d timeout=%d first_bad=%s\n",
    v1, v2, other, non200, e.connect, e.read, e.write, e.timeout, bad))
end
