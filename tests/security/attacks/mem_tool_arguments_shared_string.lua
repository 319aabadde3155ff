-- class: memory
-- description: a tool argument holding the same 8 MiB string 100 times (800 MiB once copied to Python)
-- expect: status=limit_exceeded limit=memory
-- limits: memory_bytes=33554432 instructions=100000000 wall_clock_seconds=10
-- needs: replicate
-- max_seconds: 5
local s = string.rep("q", 8 * 1024 * 1024)
local list = {}
for i = 1, 100 do list[i] = s end
return app.integrations.replicate.get_prediction({prediction_id = "p", extra = list})
