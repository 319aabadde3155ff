-- class: cpu
-- description: catch the limit error with pcall and loop again, forever
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=2000000 wall_clock_seconds=10
-- max_seconds: 5
local caught = 0
while true do
  local ok, err = pcall(function() while true do end end)
  caught = caught + 1
end
