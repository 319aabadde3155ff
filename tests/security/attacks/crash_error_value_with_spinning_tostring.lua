-- class: crash
-- description: an uncaught error value whose __tostring spins; the host must not call it
-- expect: status=failed type=runtime
-- limits: wall_clock_seconds=10
-- max_seconds: 3
-- message_contains: error object
error(setmetatable({}, {__tostring = function() while true do end end, __index = function() while true do end end}))
