-- wrk script: prints one JSON line with throughput, latency percentiles and
-- error counts after the run (wrk's own --latency stops at p99).
-- Used alone for GET endpoints and by alloc_release.lua.
done = function(summary, latency, requests)
  local errors = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "rps": %.2f, "p50_ms": %.4f, "p99_ms": %.4f, ' ..
    '"p999_ms": %.4f, "max_ms": %.4f, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "timeouts": %d, "non_2xx": %d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000,
    errors.connect, errors.read, errors.write, errors.timeout, errors.status))
end
