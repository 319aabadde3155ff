--[[
The host side of the sandbox: limits, the bridge to the Python driver, and the coroutine
plumbing that carries bridge requests out of user coroutines.

This chunk runs once per LuaRuntime, on the real globals, before any script code. Everything
it needs is captured in locals here; script code runs in a separate environment without
`debug`, so none of these upvalues (the Python callbacks included) is reachable from a script.

Arguments: `host` (Python callbacks; each returns `ok, ...` and never raises) and `config`.
Returns: `core` (used by env.lua to build the script environment) and `control` (called by
the Python driver).

Rules for this file: never apply an operator (==, <, .., #, t[k] on foreign tables, tostring)
to a value the script controls: metamethods would run script code from the host. Use rawequal,
rawget, rawlen and type instead. Every loop here is bounded by something the script already
paid for (or calls `charge`): this chunk is not instrumented.

Limits
  instructions  every chunk the script runs is instrumented (`_instrument.py`): its loops and
                functions call `tick`, which hands out the next slice of the budget. `charge`
                adds the work of C functions (string.rep, table.move, ...) to the same count.
  wall clock    `tick` (and a large `charge`) read the host clock; the slice between two
                readings adapts so that a reading happens about every SLICE_TARGET seconds
                even when single operations are slow.
  memory        the allocator refuses allocations past the limit; a refusal caught by `pcall`
                is made sticky here. While the host runs (Python callbacks, the driver) the
                limit is lifted by a margin (`enter`/`leave`), because an allocation failing
                inside lupa's C code would deadlock or abort the process.
A limit that trips is sticky: every later tick, charge and host call raises it again, and no
`pcall`, `xpcall` or `coroutine.resume` catches it any more, so the script unwinds at once.
]]

local host, config = ...

local error, type, select, tostring, tonumber = error, type, select, tostring, tonumber
local rawequal, rawget, rawlen = rawequal, rawget, rawlen
local real_setmetatable, real_getmetatable = setmetatable, getmetatable
local real_pcall, real_xpcall, real_load = pcall, xpcall, load
local pack, unpack, concat = table.pack, table.unpack, table.concat
local format, string_sub, string_find = string.format, string.sub, string.find
local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local co_status, co_running, co_close = coroutine.status, coroutine.running, coroutine.close
local co_isyieldable = coroutine.isyieldable
local raw_metatable, traceback = debug.getmetatable, debug.traceback
local getinfo = debug.getinfo
local math_type, floor = math.type, math.floor

local clock, enter, leave = host.clock, host.enter, host.leave
local deadline = config.deadline
local max_instructions = config.instructions
local messages = config.messages
local SLICE_START, SLICE_MIN, SLICE_MAX = config.slice_start, config.slice_min, config.slice_max
local SLICE_TARGET = config.slice_target
local MEMORY_BYTES = config.memory_bytes
local MEMORY_ERROR = "not enough memory"

local BRIDGE = {} -- first value of every yield that is a request for the driver
local tripped, tripped_message = nil, nil -- the limit that ended the run (sticky)
local counted = 0 -- instructions charged so far
local slice = SLICE_START -- instructions handed out per tick
local last_clock = 0 -- the last clock reading
local since_clock = 0 -- instructions charged since the last clock reading
local peak_kb = 0 -- the largest heap seen at a clock reading (KiB)
local gc = collectgarbage
local main_co = nil -- the coroutine running the script's main chunk
local encode_results = nil -- the returned values -> JSON text (env.lua sets it)
local script_env = nil
local script_source = nil -- "=<chunk name>" of the script

-- Script lines ---------------------------------------------------------------------------------

local error_lines = real_setmetatable({}, { __mode = "k" }) -- bridge error value -> line
local last_index_line = nil -- where the script last looked up an app.integrations name

-- The script line that called the function `depth` levels up from the caller of call_line.
-- When that function was tail-called (`return app.integrations.x.f()`) the caller's frame
-- is gone: fall back to the line that looked the function up.
local function call_line(depth)
  local called = getinfo(depth + 1, "t")
  if called ~= nil and not called.istailcall then
    local caller = getinfo(depth + 2, "Sl")
    if caller ~= nil and caller.source == script_source then
      return caller.currentline
    end
  end
  return last_index_line
end

-- Remember the script line indexing app.integrations (called from an __index function).
local function note_index()
  local info = getinfo(3, "Sl")
  if info ~= nil and info.source == script_source then
    last_index_line = info.currentline
  end
end

-- Raise a bridge error value, remembering the script line it belongs to.
local function raise_at(err, line)
  if line ~= nil then
    error_lines[err] = line
  end
  error(err, 0)
end

-- Limits ------------------------------------------------------------------------------------

local function set_trip(kind)
  if tripped == nil then
    tripped = kind
    tripped_message = rawget(messages, kind) or kind
  end
end

-- Trip a limit (sticky) and raise it in the running script.
local function trip(kind)
  set_trip(kind)
  error(tripped_message, 0)
end

-- Read the clock: end the run at the deadline, and adapt the slice so that readings come
-- about every SLICE_TARGET seconds.
local function read_clock()
  local now = clock()
  if now == nil then
    trip("aborted")
  end
  if now == false then -- the host asks the run to stop: the job was cancelled
    trip("cancelled")
  end
  if now >= deadline then
    trip("wall_clock")
  end
  local elapsed = now - last_clock
  last_clock = now
  since_clock = 0
  local kb = gc("count")
  if kb > peak_kb then
    peak_kb = kb
  end
  if elapsed > SLICE_TARGET then
    local s = floor(slice * SLICE_TARGET / elapsed)
    slice = s < SLICE_MIN and SLICE_MIN or s
  elseif elapsed * 4 < SLICE_TARGET and slice < SLICE_MAX then
    local s = slice * 2
    slice = s > SLICE_MAX and SLICE_MAX or s
  end
end

-- Called by the instrumented code when its slice is used up: returns the next slice.
local function tick()
  if tripped ~= nil then
    error(tripped_message, 0)
  end
  read_clock()
  local left = max_instructions - counted
  if left <= 0 then
    trip("instructions")
  end
  local s = slice < left and slice or left
  counted = counted + s
  return s
end

-- Charge work done inside one C function (table.move, string.rep, ...) to the budget.
local function charge(n)
  if tripped ~= nil then
    error(tripped_message, 0)
  end
  if n >= 1 then
    if n > max_instructions - counted then
      counted = max_instructions
      trip("instructions")
    end
    counted = counted + floor(n)
    since_clock = since_clock + n
    if since_clock >= slice then
      read_clock()
    end
  end
end

-- The end of a protected call (pcall, xpcall, coroutine.resume, load): a refused allocation
-- trips the memory limit, and once any limit has tripped the error goes on up instead of
-- being caught, so the script unwinds at once (and no further code runs that might allocate
-- into a full heap, where every refused allocation costs a full emergency collection).
--
-- A caught error also costs as much as the stack is deep, and is refused below MAX_CATCH_DEPTH
-- frames: inside a coroutine Lua 5.4 recovers from an error under a (yieldable) pcall by
-- unwinding to the coroutine's resume and re-entering the frames, which lets recursion through
-- pcall and metamethods go past the C stack limit (200 levels in the main thread), and the
-- cost of each error and of each collection then grows with the depth, in C, between ticks.
local MAX_CATCH_DEPTH = 1000
local function stack_depth()
  if getinfo(32, "l") == nil then
    return 32
  end
  if getinfo(MAX_CATCH_DEPTH * 2, "l") ~= nil then
    return MAX_CATCH_DEPTH * 2
  end
  local low, high = 32, 64
  while getinfo(high, "l") ~= nil do
    low, high = high, high * 2
  end
  while high - low > 1 do
    local middle = (low + high) // 2
    if getinfo(middle, "l") ~= nil then
      low = middle
    else
      high = middle
    end
  end
  return low
end

local function after_protected(ok, ...)
  if not ok then
    if rawequal((...), MEMORY_ERROR) then
      trip("memory")
    end
    if tripped ~= nil then
      error(tripped_message, 0)
    end
    local depth = stack_depth()
    charge(depth)
    if depth > MAX_CATCH_DEPTH then
      error("C stack overflow", 0)
    end
  end
  return ok, ...
end

-- Values shared with the Python side ----------------------------------------------------------

local OBJECT_MT = { __name = "json.object" }
local ARRAY_MT = { __name = "json.array" }
local NULL_MT = {
  __name = "json.null",
  __metatable = "json.null",
  __tostring = function()
    return "null"
  end,
  __newindex = function()
    error("json.null is read-only", 2)
  end,
}
local NULL = real_setmetatable({}, NULL_MT)

local string_methods = nil -- the script's string table, set by env.lua

local function message_of(e)
  local m = rawget(e, "message")
  if type(m) == "string" then
    return m
  end
  return "error"
end

-- Error values raised by the bridge: tables with type/message/... whose string form is the
-- message. String methods and `..` work on them as on the message, for scripts written
-- against runners whose errors were plain strings.
local ERROR_MT = {
  __name = "error",
  __metatable = "error",
  __tostring = message_of,
  __concat = function(a, b)
    if type(a) == "table" then
      a = message_of(a)
    end
    if type(b) == "table" then
      b = message_of(b)
    end
    return a .. b
  end,
  __index = function(e, key)
    local f = string_methods and rawget(string_methods, key)
    if type(f) == "function" then
      return function(self, ...)
        if type(self) == "table" then
          self = message_of(self)
        end
        return f(self, ...)
      end
    end
    return nil
  end,
}

local function new_error(etype, message, kind, operation, status, title, detail, retry_after)
  return real_setmetatable({
    type = etype,
    kind = kind,
    message = message,
    operation = operation,
    status = status,
    title = title,
    detail = detail,
    retry_after = retry_after,
  }, ERROR_MT)
end

-- Python callbacks ----------------------------------------------------------------------------

local INTERNAL_MESSAGE = "internal error in the sandbox"

-- Handle a callback's packed `pcall` result (see wrap_host).
local function host_result(r, level)
  if not r[1] then
    -- lupa raised into Lua: its error value may be a Python object, never hand it over.
    error(new_error("internal", INTERNAL_MESSAGE, "internal"), 0)
  end
  if r[2] then
    return unpack(r, 3, r.n)
  end
  local code = r[3]
  if code == "limit" then
    trip(r[4])
  elseif code == "abort" then
    trip("aborted")
  elseif code == "raise" then
    error(new_error(r[4], r[5], r[6]), 0)
  end
  error(r[4], level + 1)
end

-- Turn a callback's `false, code, ...` into a Lua error raised at `level` (as for `error`)
-- relative to the function returned here. The memory limit is lifted while Python runs.
local function wrap_host(fn, level)
  level = (level or 1) + 1
  return function(...)
    if tripped ~= nil then
      error(tripped_message, 0)
    end
    enter()
    local r = pack(real_pcall(fn, ...))
    leave()
    return host_result(r, level)
  end
end

-- The bridge ----------------------------------------------------------------------------------

local function answer(line, ok, ...)
  if ok then
    return ...
  end
  local code, payload = ...
  if code == "limit" then
    trip(payload)
  end
  raise_at(payload, line)
end

-- The one door out: yield a request to the driver and return its answer (or raise its error).
-- From inside user coroutines the request travels up through resume_through below.
local function request(...)
  if tripped ~= nil then
    error(tripped_message, 0)
  end
  if not co_isyieldable() then
    error(
      "integration calls and sleep() cannot run inside a callback called from C "
        .. "(table.sort comparators, string.gsub functions, __tostring, ...)",
      3
    )
  end
  return answer(call_line(2), co_yield(BRIDGE, ...))
end

-- Coroutines ----------------------------------------------------------------------------------

-- Resume `co`; while it yields bridge requests, pass them up (yielding the running coroutine
-- in turn) and hand each answer back down.
local function resume_through(co, ...)
  local r = pack(co_resume(co, ...))
  while r[1] and rawequal(r[2], BRIDGE) do
    r = pack(co_resume(co, co_yield(BRIDGE, unpack(r, 3, r.n))))
  end
  return r
end

local function bad_argument(n, fname, expected, value)
  error(format("bad argument #%d to '%s' (%s expected, got %s)", n, fname, expected, type(value)), 3)
end

local sb_coroutine = {}

function sb_coroutine.create(f)
  if type(f) ~= "function" then
    bad_argument(1, "create", "function", f)
  end
  return co_create(f)
end

function sb_coroutine.resume(co, ...)
  if type(co) ~= "thread" then
    bad_argument(1, "resume", "coroutine", co)
  end
  local r = resume_through(co, ...)
  return after_protected(unpack(r, 1, r.n))
end

function sb_coroutine.wrap(f)
  if type(f) ~= "function" then
    bad_argument(1, "wrap", "function", f)
  end
  local co = co_create(f)
  return function(...)
    local r = resume_through(co, ...)
    if r[1] then
      return unpack(r, 2, r.n)
    end
    local e = r[2]
    if rawequal(e, MEMORY_ERROR) then
      trip("memory")
    end
    -- After a limit, never run that thread's __close handlers.
    if tripped == nil and co_status(co) == "dead" then
      co_close(co)
    end
    if type(e) == "string" then
      error(e, 2)
    end
    error(e, 0)
  end
end

function sb_coroutine.yield(...)
  if rawequal(co_running(), main_co) then
    error("attempt to yield from outside a coroutine", 2)
  end
  return co_yield(...)
end

function sb_coroutine.running()
  local co = co_running()
  return co, rawequal(co, main_co)
end

function sb_coroutine.isyieldable(co)
  if co == nil then
    co = co_running()
  elseif type(co) ~= "thread" then
    bad_argument(1, "isyieldable", "coroutine", co)
  end
  if rawequal(co, main_co) then
    return false
  end
  return co_isyieldable(co)
end

function sb_coroutine.status(co)
  if type(co) ~= "thread" then
    bad_argument(1, "status", "coroutine", co)
  end
  return co_status(co)
end

function sb_coroutine.close(co)
  if type(co) ~= "thread" then
    bad_argument(1, "close", "coroutine", co)
  end
  if tripped ~= nil then
    return false, tripped_message
  end
  local status = co_status(co)
  if status ~= "suspended" and status ~= "dead" then
    error(format("cannot close a %s coroutine", status), 2)
  end
  return after_protected(co_close(co))
end

-- Replacements for base functions -------------------------------------------------------------

local function sb_pcall(f, ...)
  return after_protected(real_pcall(f, ...))
end

local function sb_xpcall(f, handler, ...)
  if type(handler) ~= "function" then
    bad_argument(2, "xpcall", "function", handler)
  end
  -- After a limit, the message handler is not called: the limit error goes through as it is.
  local function guarded(e)
    if tripped ~= nil then
      return e
    end
    return handler(e)
  end
  return after_protected(real_xpcall(f, guarded, ...))
end

local function sb_getmetatable(v)
  local mt = real_getmetatable(v)
  if rawequal(mt, OBJECT_MT) or rawequal(mt, ARRAY_MT) then
    return nil
  end
  return mt
end

local function sb_setmetatable(t, mt)
  if type(t) ~= "table" then
    bad_argument(1, "setmetatable", "table", t)
  end
  if mt ~= nil and type(mt) ~= "table" then
    bad_argument(2, "setmetatable", "nil or table", mt)
  end
  local old = raw_metatable(t)
  if old ~= nil and rawget(old, "__metatable") ~= nil then
    error("cannot change a protected metatable", 2)
  end
  -- Finalizers run inside the garbage collector (and after the run): no limit reaches them.
  if mt ~= nil and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not available in the sandbox", 2)
  end
  -- Weak-keyed tables (ephemerons) make the collector's atomic step quadratic in their size.
  -- (A script can still add __mode to a metatable later; see ENGINE.md, residual risks.)
  local mode = mt ~= nil and rawget(mt, "__mode")
  if type(mode) == "string" and string_find(mode, "k", 1, true) and not string_find(mode, "v", 1, true) then
    error("weak-keyed tables (__mode 'k') are not available in the sandbox; use 'kv' or 'v'", 2)
  end
  return real_setmetatable(t, mt)
end

-- Compiling -----------------------------------------------------------------------------------

-- The name Lua gives a chunk in messages (luaO_chunkid, simplified).
local function chunk_label(chunkname)
  local first = string_sub(chunkname, 1, 1)
  if first == "=" or first == "@" then
    return string_sub(chunkname, 2, 60)
  end
  local line = string_sub(chunkname, 1, (string_find(chunkname, "[\r\n]") or 46) - 1)
  if #line < #chunkname or #line > 45 then
    line = string_sub(line, 1, 42) .. "..."
  end
  return '[string "' .. line .. '"]'
end

-- Compile script code: check it as written (syntax errors name the script's own positions;
-- binary chunks are refused), then load the instrumented text. `instrument(source)` returns
-- the new text, or false and the line of a reserved name.
local function compile(source, chunkname, env, instrument)
  local checked, err = real_load(source, chunkname, "t", NULL)
  if checked == nil then
    return nil, err
  end
  checked = nil
  local text, line = instrument(source)
  if not text then
    return nil, format("%s:%d: names starting with __luaq are reserved", chunk_label(chunkname), line)
  end
  return real_load(text, chunkname, "t", { __luaq_tick = tick, __luaq_env = env })
end

local function load_result(ok, ...)
  if ok then
    return ...
  end
  after_protected(false, ...)
  return nil, (...)
end

local instrument_from_script = nil -- host.instrument wrapped for script context (set below)
local MAX_LOAD_BYTES = 4 * 1024 * 1024 -- code a script may load at once (scanned in Python)

local function sb_load(chunk, chunkname, mode, ...)
  local env = script_env
  if select("#", ...) > 0 then
    env = ...
  end
  local kind = type(chunk)
  if kind == "function" then
    -- Read the whole chunk first (each piece is charged; a reader that errors makes load fail).
    local parts, n, reader = {}, 0, chunk
    while true do
      local ok, piece = real_pcall(reader)
      if not ok then
        return load_result(false, piece)
      end
      if piece == nil or rawequal(piece, "") then
        break
      end
      if type(piece) ~= "string" then
        return nil, "reader function must return a string"
      end
      n = n + 1
      parts[n] = piece
      charge(1 + (rawlen(piece) >> 4))
    end
    chunk = concat(parts, "", 1, n)
    if chunkname == nil then
      chunkname = "=(load)"
    end
  elseif kind ~= "string" then
    bad_argument(1, "load", "string", chunk)
  elseif chunkname == nil then
    chunkname = chunk
  end
  if type(chunkname) ~= "string" then
    bad_argument(2, "load", "string", chunkname)
  end
  if rawlen(chunk) > MAX_LOAD_BYTES then
    return nil, format("chunk too large to load (%d bytes; at most %d)", rawlen(chunk), MAX_LOAD_BYTES)
  end
  charge(rawlen(chunk) * 8) -- scanning (Python) and parsing (C, twice) happen outside the ticks
  -- Text chunks only, whatever `mode` says: binary chunks can break the VM.
  return load_result(real_pcall(compile, chunk, chunkname, env, instrument_from_script))
end

-- C functions that may loop long -------------------------------------------------------------

local function count_of(v)
  if type(v) == "string" then
    v = tonumber(v)
  end
  if type(v) == "number" and v == v then
    return v
  end
  return nil
end

local function size_of(v)
  local t = type(v)
  if t == "string" then
    return rawlen(v)
  elseif t == "number" then
    return rawlen(tostring(v))
  end
  return nil
end

-- C errors re-raised at the script's call (C functions called from here have no position).
local function c_result(ok, ...)
  if ok then
    return ...
  end
  local e = ...
  if type(e) == "string" and not rawequal(e, MEMORY_ERROR) and tripped == nil then
    error(e, 2)
  end
  error(e, 0)
end

local string_rep = string.rep
local function sb_string_rep(s, n, sep)
  local count, ls, lsep = count_of(n), size_of(s), size_of(sep) or 0
  if count ~= nil and count >= 1 and ls ~= nil and (sep == nil or size_of(sep) ~= nil) then
    if ls + lsep == 0 then
      return "" -- Lua 5.4 would loop `n` times here, even for n = 2^53
    end
    local total = count * (ls + lsep)
    if total <= MEMORY_BYTES then -- larger results fail at once with the memory limit
      charge(total / 16)
    end
  end
  return c_result(real_pcall(string_rep, s, n, sep))
end

local table_move = table.move
local function sb_table_move(a1, f, e, t, a2)
  local first, last = count_of(f), count_of(e)
  if first ~= nil and last ~= nil and last >= first then
    charge(last - first + 1)
  end
  if a2 == nil then
    return c_result(real_pcall(table_move, a1, f, e, t))
  end
  return c_result(real_pcall(table_move, a1, f, e, t, a2))
end

-- Control (called from Python) ----------------------------------------------------------------

local control = {}

-- `instrumented` is the host's rewrite of `source` (false when it uses a reserved name, at
-- line `reserved_line`).
function control.load_main(source, instrumented, chunkname, reserved_line)
  script_source = chunkname
  local fn, err = compile(source, chunkname, script_env, function()
    return instrumented, reserved_line
  end)
  if fn == nil then
    return false, err
  end
  main_co = co_create(fn)
  return true
end

local function resumed(ok, ...)
  if not ok then
    enter()
    return "error", (...)
  end
  if co_status(main_co) == "dead" then
    -- Encode the returned values still at the script's memory limit; the encoder is
    -- instrumented, so its work counts like the script's own.
    local done, text = real_pcall(encode_results, pack(...))
    enter()
    if done then
      return "done", text
    end
    return "error", text
  end
  enter()
  if rawequal((...), BRIDGE) then
    return "request", select(2, ...)
  end
  return "error", "attempt to yield from outside a coroutine"
end

-- Resume the script with the driver's answer. Returns one of
--   "request", kind, ...    the script waits for the driver to perform a request
--   "done", text            the chunk returned: its values as a JSON array
--   "error", value          the chunk raised `value`
function control.resume(...)
  leave()
  last_clock = clock() or last_clock
  since_clock = 0
  return resumed(co_resume(main_co, ...))
end

-- After setup: the sandbox's own work (the instrumented host chunks ran) is not the script's.
function control.reset_count()
  counted = 0
  slice = SLICE_START
  peak_kb = 0
end

function control.limit_state()
  local kb = gc("count")
  return tripped, counted, (kb > peak_kb and kb or peak_kb) * 1024
end

function control.traceback()
  return traceback(main_co)
end

-- What an error value that reached the top says about itself, without running its metamethods.
function control.error_info(e)
  local t = type(e)
  if t == "string" or t == "number" then
    return t, format("%s", e)
  end
  if t == "table" then
    local message = rawget(e, "message")
    if type(message) ~= "string" then
      message = nil
    end
    local etype = nil
    if rawequal(raw_metatable(e), ERROR_MT) then
      etype = rawget(e, "type")
      if type(etype) ~= "string" then
        etype = nil
      end
    end
    local line = rawget(error_lines, e)
    if math_type(line) ~= "integer" then
      line = nil
    end
    return t, message, etype, line
  end
  return t
end

-- The converter's view of a value: a stream of tokens, produced in chunks (see _convert.py).
-- Strings and booleans are tokens of their own; everything else starts with a tag. Raw access
-- only: no metamethod of the script runs. The walk is lazy (one chunk per call), so the host
-- stops it as soon as its budget is spent; a table reached twice is walked twice.
local T_NUMBER, T_NULL, T_SEQUENCE, T_OBJECT, T_MARKED_OBJECT, T_MARKED_ARRAY = 1, 2, 3, 4, 5, 6
local T_EMPTY, T_EMPTY_OBJECT, T_EMPTY_ARRAY, T_OTHER, T_CYCLE, T_DEEP, T_KEY_OTHER = 7, 8, 9, 10, 11, 12, 13
local WALK_CHUNK = 4096

function control.walk(root, max_depth)
  local buf, n = {}, 0
  local active = {}

  local function emit(x)
    n = n + 1
    buf[n] = x
    if n >= WALK_CHUNK then
      co_yield(n)
      n = 0
    end
  end

  local function walk(v, depth)
    local t = type(v)
    if t == "string" or t == "boolean" then
      emit(v)
    elseif t == "number" then
      emit(T_NUMBER)
      emit(v)
    elseif t == "nil" or rawequal(v, NULL) then
      emit(T_NULL)
    elseif t ~= "table" then
      emit(T_OTHER)
      emit(t)
    elseif active[v] then
      emit(T_CYCLE)
    elseif depth >= max_depth then
      emit(T_DEEP)
    else
      local mt = raw_metatable(v)
      local marked_object, marked_array = rawequal(mt, OBJECT_MT), rawequal(mt, ARRAY_MT)
      local count, sequence = 0, true
      for k in next, v do
        count = count + 1
        if sequence and math_type(k) ~= "integer" then
          sequence = false
        end
      end
      if count == 0 then
        emit(marked_object and T_EMPTY_OBJECT or marked_array and T_EMPTY_ARRAY or T_EMPTY)
        return
      end
      if sequence then
        for i = 1, count do
          if rawget(v, i) == nil then
            sequence = false
            break
          end
        end
      end
      active[v] = true
      if sequence and not marked_object and not marked_array then
        emit(T_SEQUENCE)
        emit(count)
        for i = 1, count do
          walk(rawget(v, i), depth + 1)
        end
      else
        emit(marked_object and T_MARKED_OBJECT or marked_array and T_MARKED_ARRAY or T_OBJECT)
        emit(count)
        for k, x in next, v do
          local kt = type(k)
          if kt == "string" or kt == "boolean" then
            emit(k)
          elseif kt == "number" then
            emit(T_NUMBER)
            emit(k)
          else
            emit(T_KEY_OTHER)
            emit(kt)
          end
          walk(x, depth + 1)
        end
      end
      active[v] = nil
    end
  end

  local co = co_create(function()
    walk(root, 0)
    return n
  end)
  return function()
    local ok, m = co_resume(co)
    if not ok then
      error(m, 0)
    end
    return unpack(buf, 1, m)
  end
end

-- Charge work the host does for the script (conversions, regex matches): false once the
-- instruction limit is (or was already) exceeded. Never raises: called from Python.
function control.charge_host(amount)
  if tripped ~= nil then
    return false
  end
  if amount > max_instructions - counted then
    counted = max_instructions
    set_trip("instructions")
    return false
  end
  counted = counted + amount
  return true
end

-- Mark a fresh table (made by Python) as a JSON object (1) or array (2).
function control.mark(t, kind)
  if kind == 1 then
    return real_setmetatable(t, OBJECT_MT)
  end
  return real_setmetatable(t, ARRAY_MT)
end

control.new_error = new_error
control.null = NULL
control.type = type

-- Called by env.lua, once the Python callbacks are in `host`.
function control.set_env(env, strings, results_encoder)
  script_env = env
  string_methods = strings
  encode_results = results_encoder
  instrument_from_script = wrap_host(host.instrument, 1)
end

local core = {
  BRIDGE = BRIDGE,
  NULL = NULL,
  OBJECT_MT = OBJECT_MT,
  ARRAY_MT = ARRAY_MT,
  new_error = new_error,
  wrap_host = wrap_host,
  request = request,
  trip = trip,
  tick = tick,
  charge = charge,
  c_result = c_result,
  call_line = call_line,
  note_index = note_index,
  raise_at = raise_at,
  coroutine = sb_coroutine,
  pcall = sb_pcall,
  xpcall = sb_xpcall,
  getmetatable = sb_getmetatable,
  setmetatable = sb_setmetatable,
  load = sb_load,
  string_rep = sb_string_rep,
  table_move = sb_table_move,
  set_env = control.set_env,
}

return core, control
