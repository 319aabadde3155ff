-- class: crash
-- description: coroutines resumed inside coroutines, 100000 deep
-- expect: status=failed type=runtime
-- limits: wall_clock_seconds=10
-- max_seconds: 5
local function nest(n)
  local co = coroutine.wrap(function() return nest(n + 1) end)
  return co()
end
return nest(1)
