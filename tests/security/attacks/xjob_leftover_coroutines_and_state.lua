-- class: cross_job
-- description: leave suspended coroutines, pending to-be-closed values and big garbage behind
-- expect: status=succeeded
-- limits: wall_clock_seconds=10
for i = 1, 100 do
  local co = coroutine.create(function()
    local x <close> = setmetatable({}, {__close = function() print("closed late") end})
    coroutine.yield()
  end)
  coroutine.resume(co)
  _G["co" .. i] = co
end
_G.garbage = string.rep("g", 4 * 1024 * 1024)
return "left"
