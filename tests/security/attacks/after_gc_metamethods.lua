-- class: after_limit
-- description: finalizers would run inside the collector and when the runtime closes: refused
-- expect: status=failed type=runtime
-- limits: wall_clock_seconds=10
-- message_contains: __gc metamethods are not available
local mt = {}
local t = setmetatable({}, mt)
mt.__gc = function() while true do end end -- set after setmetatable: never marked for finalization
collectgarbage()
setmetatable({}, {__gc = function() while true do end end})
