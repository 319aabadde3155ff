-- class: cpu
-- description: a plain endless loop
-- expect: status=limit_exceeded type=limit_exceeded limit=instructions
-- limits: instructions=2000000 wall_clock_seconds=10
-- max_seconds: 5
while true do end
