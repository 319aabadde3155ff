-- class: cpu
-- description: swallow the limit error and return normally; the run must not succeed
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=2000000 wall_clock_seconds=10
local ok = pcall(function() while true do end end)
local ok2 = pcall(function() while true do end end)
return "survived", ok, ok2
