-- class: crash
-- description: unbounded recursion through C (tostring -> __tostring -> tostring ...) is a clean error
-- expect: status=failed type=runtime
-- limits: wall_clock_seconds=10
-- max_seconds: 5
local t = setmetatable({}, {__tostring = function(self) return tostring(self) end})
return tostring(t)
