-- wrk script: POST the recorded AdmissionReview (file named by BODY_FILE) as application/json,
-- and report how many answers were not 2xx (wrk counts them in summary.errors.status) and how
-- many requests were completed (bench/webhook/run divides the webhook's CPU time by it).
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  io.write(string.format("non-2xx answers: %d, socket errors: %d\n", summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("requests completed: %d\n", summary.requests))
end
