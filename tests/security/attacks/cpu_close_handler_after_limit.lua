-- class: cpu
-- description: a to-be-closed variable whose __close spins once the limit has tripped
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=2000000 wall_clock_seconds=10
-- max_seconds: 5
local function body()
  local guard <close> = setmetatable({}, {__close = function() while true do end end})
  while true do end
end
while true do pcall(body) end
