-- class: memory
-- description: a tool argument with 2^24 paths through shared subtables
-- expect: status=limit_exceeded limit=memory|instructions
-- limits: memory_bytes=33554432 instructions=100000000 wall_clock_seconds=10
-- needs: replicate
-- max_seconds: 5
local t = {"leaf"}
for i = 1, 24 do t = {t, t} end
return app.integrations.replicate.get_prediction({prediction_id = "p", extra = t})
