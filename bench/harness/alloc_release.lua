-- wrk script: POST /allocate then DELETE /allocations/{id}, over and over.
-- Each wrk thread keeps a queue of allocation ids it was granted; a request
-- releases the oldest one when there is one, else allocates. So the stream
-- alternates allocate/release and the number of GPUs held stays bounded by
-- the number of connections. Set BASE to the API base path.
local base = os.getenv("GPURM_BENCH_BASE") or "/api/v1/gpu"
local body = '{"gpu_count": 1, "owner": "bench"}'
local held = {}
local first, last = 1, 0

request = function()
  if first <= last then
    local id = held[first]
    held[first] = nil
    first = first + 1
    return wrk.format("DELETE", base .. "/allocations/" .. id)
  end
  return wrk.format("POST", base .. "/allocate", {["Content-Type"] = "application/json"}, body)
end

response = function(status, headers, body_text)
  if status == 200 then
    local id = string.match(body_text, '"allocation_id"%s*:%s*"([^"]+)"')
    -- A DELETE's answer names the allocation too, but inside "allocation";
    -- only an allocate answer has "success".
    if id and string.find(body_text, '"success"%s*:%s*true') then
      last = last + 1
      held[last] = id
    end
  end
end
