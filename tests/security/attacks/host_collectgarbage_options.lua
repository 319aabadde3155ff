-- class: host_escape
-- description: collectgarbage only counts; stopping or tuning the collector does nothing
-- expect: status=succeeded
-- limits: wall_clock_seconds=10
-- result: [0, 0, 0, 0, 0, true]
return collectgarbage("stop"), collectgarbage("collect"), collectgarbage("step", 1e9),
  collectgarbage("incremental", 1, 1, 1), collectgarbage("generational"), collectgarbage("count") > 0
