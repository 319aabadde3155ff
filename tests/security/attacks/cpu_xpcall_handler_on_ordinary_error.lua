-- class: cpu
-- description: a message handler that spins for an ordinary error, caught again and again
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=2000000 wall_clock_seconds=10
-- max_seconds: 5
while true do
  xpcall(function() error("x") end, function(m) while true do end end)
end
