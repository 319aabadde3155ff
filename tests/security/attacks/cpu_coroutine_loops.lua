-- class: cpu
-- description: loops inside coroutines (debug.sethook does not follow new coroutines)
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=2000000 wall_clock_seconds=10
-- max_seconds: 5
local co = coroutine.create(function()
  local inner = coroutine.wrap(function()
    while true do pcall(function() while true do end end) end
  end)
  while true do pcall(inner) end
end)
while true do coroutine.resume(co) end
