--[[
string.find, string.match, string.gmatch and string.gsub that cannot hang the worker.

Lua's own pattern matcher (lstrlib.c) backtracks, so one call can run for minutes inside C,
where no instruction limit reaches it (`("a"):rep(1e5):find("a*b")` is 10^10 steps). Each call
here first analyses the pattern (cached) and bounds the work the C matcher could do:

    positions x (pattern length + 1) x (subject length + 1) ^ e

where `positions` is 1 for an anchored pattern and the subject length + 1 otherwise, and `e`
counts the constructs that can rescan the subject: `*`, `+`, `-` and `?` items that are not
the last item of the pattern, `%b` and back-references. When that bound is below C_BOUND the
call goes to C (the common case); a plain search goes to C when subject x pattern is below
C_BOUND and to the host's linear-time search otherwise; everything else runs in the port of
lstrlib's match machine below. This file is instrumented like a script (ticks in every loop and
function), so the port runs under the script's instruction and wall-clock limits.

Arguments: the tick function (consumed by the prologue), then `deps`: `charge(n)` adds work
done in C to the instruction count, `host_find(s, p, init)` is a linear-time plain search,
`real` holds the C functions. Returns a table of replacement functions.
]]

local _, deps = ...

local type, tostring, error, select = type, tostring, error, select
local rawequal, pcall = rawequal, pcall
local math_type, floor = math.type, math.floor
local sbyte, ssub, sfind, format = string.byte, string.sub, string.find, string.format
local C_find, C_match, C_gmatch, C_gsub = deps.real.find, deps.real.match, deps.real.gmatch, deps.real.gsub
local concat = table.concat
local charge, host_find = deps.charge, deps.host_find

local C_BOUND = 1e7 -- matcher steps a C call may take (about 10-30 ms)
local MAXCCALLS = 200
local MAXCAPTURES = 32
local CAP_UNFINISHED, CAP_POSITION = -1, -2
local L_ESC = 37 -- '%'
local B_LBRACKET, B_RBRACKET, B_CARET, B_DOLLAR = 91, 93, 94, 36
local B_LPAREN, B_RPAREN, B_DOT, B_DASH = 40, 41, 46, 45
local B_STAR, B_PLUS, B_QUESTION = 42, 43, 63

-- Errors ----------------------------------------------------------------------------------------

-- Matcher errors are raised as this marker table and re-raised at the script's call.
local PATTERN_ERROR = {}
local function perror(message)
  error({ PATTERN_ERROR, message }, 0)
end

-- Character classes: per class letter (its byte, lower case), 256 bytes of "1"/"0" (one per
-- character), computed with the C matcher itself so that both agree (_env.py).
local CLASS = deps.classes

local function match_class(c, cl)
  local lower_cl = cl
  if cl >= 65 and cl <= 90 then
    lower_cl = cl + 32
  end
  local t = CLASS[lower_cl]
  if t == nil then
    return cl == c
  end
  local res = sbyte(t, c + 1) == 49
  if cl >= 65 and cl <= 90 then
    return not res
  end
  return res
end

-- The match machine (lstrlib.c, Lua 5.4) ------------------------------------------------------------
-- Positions are 1-based byte indices; `p_end` is #pattern + 1 and `s_end` is #subject + 1.

local function class_end(ms, p)
  local pat, p_end = ms.p, ms.p_end
  local c = sbyte(pat, p)
  p = p + 1
  if c == L_ESC then
    if p >= p_end then
      perror("malformed pattern (ends with '%')")
    end
    return p + 1
  elseif c == B_LBRACKET then
    if sbyte(pat, p) == B_CARET then
      p = p + 1
    end
    repeat
      if p >= p_end then
        perror("malformed pattern (missing ']')")
      end
      local cc = sbyte(pat, p)
      p = p + 1
      if cc == L_ESC and p < p_end then
        p = p + 1
      end
    until sbyte(pat, p) == B_RBRACKET
    return p + 1
  end
  return p
end

local function match_bracket_class(ms, c, p, ec)
  local pat = ms.p
  local sig = true
  if sbyte(pat, p + 1) == B_CARET then
    sig = false
    p = p + 1
  end
  p = p + 1
  while p < ec do
    local pc = sbyte(pat, p)
    if pc == L_ESC then
      p = p + 1
      if match_class(c, sbyte(pat, p)) then
        return sig
      end
    elseif sbyte(pat, p + 1) == B_DASH and p + 2 < ec then
      p = p + 2
      if pc <= c and c <= sbyte(pat, p) then
        return sig
      end
    elseif pc == c then
      return sig
    end
    p = p + 1
  end
  return not sig
end

local function single_match(ms, s, p, ep)
  if s >= ms.s_end then
    return false
  end
  local c = sbyte(ms.s, s)
  local pc = sbyte(ms.p, p)
  if pc == B_DOT then
    return true
  elseif pc == L_ESC then
    return match_class(c, sbyte(ms.p, p + 1))
  elseif pc == B_LBRACKET then
    return match_bracket_class(ms, c, p, ep - 1)
  end
  return pc == c
end

local match -- forward

local function match_balance(ms, s, p)
  if p >= ms.p_end - 1 then
    perror("malformed pattern (missing arguments to '%b')")
  end
  local subject = ms.s
  if sbyte(subject, s) ~= sbyte(ms.p, p) then
    return nil
  end
  local b, e = sbyte(ms.p, p), sbyte(ms.p, p + 1)
  local cont = 1
  local s_end = ms.s_end
  s = s + 1
  while s < s_end do
    local c = sbyte(subject, s)
    if c == e then
      cont = cont - 1
      if cont == 0 then
        return s + 1
      end
    elseif c == b then
      cont = cont + 1
    end
    s = s + 1
  end
  return nil
end

local function max_expand(ms, s, p, ep)
  local i = 0
  while single_match(ms, s + i, p, ep) do
    i = i + 1
  end
  while i >= 0 do
    local res = match(ms, s + i, ep + 1)
    if res ~= nil then
      return res
    end
    i = i - 1
  end
  return nil
end

local function min_expand(ms, s, p, ep)
  while true do
    local res = match(ms, s, ep + 1)
    if res ~= nil then
      return res
    elseif single_match(ms, s, p, ep) then
      s = s + 1
    else
      return nil
    end
  end
end

local function start_capture(ms, s, p, what)
  local level = ms.level
  if level >= MAXCAPTURES then
    perror("too many captures")
  end
  ms.cap_init[level + 1] = s
  ms.cap_len[level + 1] = what
  ms.level = level + 1
  local res = match(ms, s, p)
  if res == nil then
    ms.level = ms.level - 1
  end
  return res
end

local function capture_to_close(ms)
  local level = ms.level
  while level >= 1 do
    if ms.cap_len[level] == CAP_UNFINISHED then
      return level
    end
    level = level - 1
  end
  perror("invalid pattern capture")
end

local function end_capture(ms, s, p)
  local l = capture_to_close(ms)
  ms.cap_len[l] = s - ms.cap_init[l]
  local res = match(ms, s, p)
  if res == nil then
    ms.cap_len[l] = CAP_UNFINISHED
  end
  return res
end

local function check_capture(ms, l)
  l = l - 48 -- '0'; capture %1 is index 1
  if l < 1 or l > ms.level or ms.cap_len[l] == CAP_UNFINISHED then
    perror("invalid capture index %" .. tostring(l))
  end
  return l
end

local function match_capture(ms, s, l)
  l = check_capture(ms, l)
  local len = ms.cap_len[l]
  local init = ms.cap_init[l]
  if ms.s_end - s >= len and ssub(ms.s, init, init + len - 1) == ssub(ms.s, s, s + len - 1) then
    return s + len
  end
  return nil
end

match = function(ms, s, p)
  local depth = ms.depth - 1
  if depth == 0 then
    perror("pattern too complex")
  end
  ms.depth = depth
  local pat, p_end = ms.p, ms.p_end
  while true do
    if p == p_end then
      break
    end
    local pc = sbyte(pat, p)
    local default = false
    if pc == B_LPAREN then
      if sbyte(pat, p + 1) == B_RPAREN then
        s = start_capture(ms, s, p + 2, CAP_POSITION)
      else
        s = start_capture(ms, s, p + 1, CAP_UNFINISHED)
      end
      break
    elseif pc == B_RPAREN then
      s = end_capture(ms, s, p + 1)
      break
    elseif pc == B_DOLLAR and p + 1 == p_end then
      if s ~= ms.s_end then
        s = nil
      end
      break
    elseif pc == L_ESC then
      local nc = sbyte(pat, p + 1)
      if nc == 98 then -- 'b'
        s = match_balance(ms, s, p + 2)
        if s == nil then
          break
        end
        p = p + 4
      elseif nc == 102 then -- 'f'
        p = p + 2
        if sbyte(pat, p) ~= B_LBRACKET then
          perror("missing '[' after '%f' in pattern")
        end
        local ep = class_end(ms, p)
        local previous = 0
        if s ~= ms.s_init then
          previous = sbyte(ms.s, s - 1)
        end
        local current = sbyte(ms.s, s) or 0
        if not match_bracket_class(ms, previous, p, ep - 1) and match_bracket_class(ms, current, p, ep - 1) then
          p = ep
        else
          s = nil
          break
        end
      elseif nc ~= nil and nc >= 48 and nc <= 57 then -- %0-%9
        s = match_capture(ms, s, nc)
        if s == nil then
          break
        end
        p = p + 2
      else
        default = true
      end
    else
      default = true
    end
    if default then
      local ep = class_end(ms, p)
      local epc = sbyte(pat, ep)
      if not single_match(ms, s, p, ep) then
        if epc == B_STAR or epc == B_QUESTION or epc == B_DASH then
          p = ep + 1
        else
          s = nil
          break
        end
      elseif epc == B_QUESTION then
        local res = match(ms, s + 1, ep + 1)
        if res ~= nil then
          s = res
          break
        end
        p = ep + 1
      elseif epc == B_PLUS then
        s = max_expand(ms, s + 1, p, ep)
        break
      elseif epc == B_STAR then
        s = max_expand(ms, s, p, ep)
        break
      elseif epc == B_DASH then
        s = min_expand(ms, s, p, ep)
        break
      else
        s = s + 1
        p = ep
      end
    end
  end
  ms.depth = ms.depth + 1
  return s
end

local function new_state(s, p, pstart)
  return {
    s = s,
    s_init = 1,
    s_end = #s + 1,
    p = p,
    p_end = #p + 1,
    level = 0,
    depth = MAXCCALLS,
    cap_init = {},
    cap_len = {},
  }
end

local function reprep(ms)
  ms.level = 0
  ms.depth = MAXCCALLS
end

-- One capture as a value: a string, or a position for `()`; `i` is 1-based.
local function get_capture(ms, i, s, e)
  if i > ms.level then
    if i ~= 1 then
      perror("invalid capture index %" .. tostring(i))
    end
    return ssub(ms.s, s, e - 1)
  end
  local len = ms.cap_len[i]
  local init = ms.cap_init[i]
  if len == CAP_UNFINISHED then
    perror("unfinished capture")
  elseif len == CAP_POSITION then
    return init
  end
  return ssub(ms.s, init, init + len - 1)
end

-- The captures of a match (the whole match when there are none and `s` is given).
local function captures(ms, s, e)
  local n = ms.level
  if n == 0 and s ~= nil then
    return ssub(ms.s, s, e - 1)
  end
  local out = {}
  for i = 1, n do
    out[i] = get_capture(ms, i, s, e)
  end
  return table.unpack(out, 1, n)
end

local function posrelat(pos, len)
  if pos > 0 then
    return pos
  elseif pos == 0 then
    return 1
  elseif pos < -len then
    return 1
  end
  return len + pos + 1
end

local function lua_find(s, p, init, find)
  local ls = #s
  init = posrelat(init, ls)
  if init > ls + 1 then
    return nil
  end
  if find and sfind(p, "[%^%$%*%+%?%.%(%[%%%-]") == nil then
    return C_find(s, p, init, true) -- no special characters: a plain search, as in C
  end
  local anchor = sbyte(p, 1) == B_CARET
  local pat = p
  if anchor then
    pat = ssub(p, 2)
  end
  local ms = new_state(s, pat)
  local s1 = init
  repeat
    reprep(ms)
    local res = match(ms, s1, 1)
    if res ~= nil then
      if find then
        if ms.level == 0 then
          return s1, res - 1
        end
        return s1, res - 1, captures(ms, nil, 0)
      end
      return captures(ms, s1, res)
    end
    s1 = s1 + 1
  until s1 > ms.s_end or anchor
  return nil
end

local function lua_gmatch(s, p, init)
  local ls = #s
  init = posrelat(init, ls)
  if init > ls + 1 then
    init = ls + 2
  end
  local ms = new_state(s, p)
  local src, lastmatch = init, nil
  return function()
    while src <= ms.s_end do
      reprep(ms)
      local e = match(ms, src, 1)
      if e ~= nil and e ~= lastmatch then
        local start = src
        src, lastmatch = e, e
        return captures(ms, start, e)
      end
      src = src + 1
    end
    return nil
  end
end

local function add_s(ms, out, repl, s, e)
  local i, l = 1, #repl
  while i <= l do
    local j = sfind(repl, "%", i, true)
    if j == nil then
      out[#out + 1] = ssub(repl, i)
      return
    end
    out[#out + 1] = ssub(repl, i, j - 1)
    local c = sbyte(repl, j + 1)
    if c == L_ESC then
      out[#out + 1] = "%"
    elseif c == 48 then -- %0
      out[#out + 1] = ssub(ms.s, s, e - 1)
    elseif c ~= nil and c >= 49 and c <= 57 then
      local v = get_capture(ms, c - 48, s, e)
      out[#out + 1] = type(v) == "number" and tostring(v) or v
    else
      perror("invalid use of '%' in replacement string")
    end
    i = j + 2
  end
end

local function lua_gsub(src, p, repl, max_s)
  local tr = type(repl)
  local anchor = sbyte(p, 1) == B_CARET
  local pat = p
  if anchor then
    pat = ssub(p, 2)
  end
  local ms = new_state(src, pat)
  local out = {}
  local pos, lastmatch, n = 1, nil, 0
  local changed = false
  local s_end = ms.s_end
  while n < max_s do
    reprep(ms)
    local e = match(ms, pos, 1)
    if e ~= nil and e ~= lastmatch then
      n = n + 1
      if tr == "string" or tr == "number" then
        add_s(ms, out, tr == "number" and tostring(repl) or repl, pos, e)
        changed = true
      else
        local value
        if tr == "function" then
          value = repl(captures(ms, pos, e))
        else
          value = repl[get_capture(ms, 1, pos, e)]
        end
        if not value then
          out[#out + 1] = ssub(src, pos, e - 1)
        elseif type(value) == "string" or type(value) == "number" then
          out[#out + 1] = type(value) == "number" and tostring(value) or value
          changed = true
        else
          perror("invalid replacement value (a " .. type(value) .. ")")
        end
      end
      pos, lastmatch = e, e
    elseif pos < s_end then
      out[#out + 1] = ssub(src, pos, pos)
      pos = pos + 1
    else
      break
    end
    if anchor then
      break
    end
  end
  if not changed then
    return src, n
  end
  out[#out + 1] = ssub(src, pos)
  return concat(out), n
end

-- Pattern analysis ----------------------------------------------------------------------------------

-- Per pattern: e (see the header), whether it is anchored, whether it has no special
-- characters (a plain search in C), and the number of captures.
local analysed = {}
local analysed_count = 0

-- The index just past a set starting at `j` (the byte after '['), as class_end finds it.
local function set_end(p, j, n)
  if sbyte(p, j) == B_CARET then
    j = j + 1
  end
  repeat
    if j > n then
      return nil
    end
    local cc = sbyte(p, j)
    j = j + 1
    if cc == L_ESC and j <= n then
      j = j + 1
    end
  until sbyte(p, j) == B_RBRACKET
  return j + 1
end

local function analyse(p, gmatch)
  local key = gmatch and "\0" .. p or p
  local info = analysed[key]
  if info ~= nil then
    return info
  end
  local plain = sfind(p, "[%^%$%*%+%?%.%(%[%%%-]") == nil
  local anchored = not gmatch and sbyte(p, 1) == B_CARET
  local e = 0
  local n = #p
  local i = anchored and 2 or 1
  local captures_count = 0
  local ok = true
  while i <= n do
    local c = sbyte(p, i)
    local next_i -- index after a single-character item, or nil for other constructs
    if c == B_LPAREN or c == B_RPAREN then
      if c == B_LPAREN then
        captures_count = captures_count + 1
      end
      i = i + 1
    elseif c == L_ESC then
      local nc = sbyte(p, i + 1)
      if nc == nil then
        ok = false
        break
      elseif nc == 98 then -- %bxy
        e = e + 1
        i = i + 4
      elseif nc == 102 then -- %f[set]
        local after = sbyte(p, i + 2) == B_LBRACKET and set_end(p, i + 3, n)
        if not after then
          ok = false
          break
        end
        i = after
      elseif nc >= 48 and nc <= 57 then -- back-reference
        e = e + 1
        i = i + 2
      else
        next_i = i + 2
      end
    elseif c == B_LBRACKET then
      next_i = set_end(p, i + 1, n)
      if not next_i then
        ok = false
        break
      end
    else
      next_i = i + 1
    end
    if next_i ~= nil then
      local q = sbyte(p, next_i)
      if q == B_STAR or q == B_PLUS or q == B_DASH or q == B_QUESTION then
        if next_i < n then -- not the final item
          e = e + 1
        end
        i = next_i + 1
      else
        i = next_i
      end
    end
  end
  if captures_count > MAXCAPTURES then
    ok = false
  end
  info = { e = e, anchored = anchored, plain = plain, ok = ok, captures = captures_count }
  if analysed_count >= 256 then
    analysed, analysed_count = {}, 0
  end
  analysed[key] = info
  analysed_count = analysed_count + 1
  return info
end

-- Work bound for the C matcher.
local function c_cost(info, ls, lp, positions)
  local cost = positions * (lp + 1)
  for _ = 1, info.e do
    cost = cost * (ls + 1)
    if cost > C_BOUND then
      return cost
    end
  end
  return cost
end

-- Arguments ------------------------------------------------------------------------------------------

local function bad_argument(n, fname, expected, value, level)
  error(format("bad argument #%d to '%s' (%s expected, got %s)", n, fname, expected, type(value)), level + 1)
end

local function string_arg(v, n, fname)
  local t = type(v)
  if t == "string" then
    return v
  elseif t == "number" then
    return tostring(v)
  end
  bad_argument(n, fname, "string", v, 3)
end

local function integer_arg(v, n, fname, default)
  if v == nil then
    return default
  end
  if math_type(v) == "integer" then
    return v
  end
  local t = type(v)
  if t == "string" then
    local converted = tonumber(v)
    if converted ~= nil then
      v = converted
      t = "number"
    end
  end
  if t == "number" then
    if math_type(v) == "integer" then
      return v
    end
    if v == floor(v) and v >= math.mininteger and v < -(math.mininteger + 0.0) then
      return floor(v)
    end
    error(format("bad argument #%d to '%s' (number has no integer representation)", n, fname), 3)
  end
  bad_argument(n, fname, "number", v, 3)
end

-- The Lua matcher's results; its pattern errors are raised at the script's call. (Called in
-- tail position from the functions below, so level 2 is the script.)
local function rethrow(ok, ...)
  if ok then
    return ...
  end
  local e = ...
  if type(e) == "table" and rawequal(e[1], PATTERN_ERROR) then
    error(e[2], 2)
  end
  error(e, 0)
end

-- C's results; C's own errors (they carry no position when C is called through pcall) are
-- raised at the script's call, other errors (a replacement function's, limits) as they are.
local function c_result(ok, ...)
  if ok then
    return ...
  end
  local e = ...
  if type(e) == "string" and not rawequal(e, "not enough memory") and not sfind(ssub(e, 1, 200), "^[^\n]-:%d+: ") then
    error(e, 2)
  end
  error(e, 0)
end

-- The replacements ------------------------------------------------------------------------------------

local M = {}

local function plain_find(s, p, init, ls, lp)
  if init > ls + 1 then
    return nil
  end
  charge((ls - init + 1) >> 4)
  if (ls - init + 2) * (lp + 1) <= C_BOUND or lp <= 8 then
    return C_find(s, p, init, true)
  end
  local at = host_find(s, p, init)
  if at == nil then
    return nil
  end
  return at, at + lp - 1
end

-- The general paths: any arguments, checked here, errors raised at the script's call.

local function find_general(s, p, init, plain)
  s = string_arg(s, 1, "find")
  p = string_arg(p, 2, "find")
  init = integer_arg(init, 3, "find", 1)
  local ls, lp = #s, #p
  init = posrelat(init, ls)
  local info = analyse(p)
  if plain or info.plain then
    return plain_find(s, p, init, ls, lp)
  end
  if info.ok then
    local cost = c_cost(info, ls, lp, info.anchored and 1 or (ls - init + 2))
    if cost <= C_BOUND then
      charge(floor(cost / 64))
      return c_result(pcall(C_find, s, p, init))
    end
  end
  return rethrow(pcall(lua_find, s, p, init, true))
end

local function match_general(s, p, init)
  s = string_arg(s, 1, "match")
  p = string_arg(p, 2, "match")
  init = integer_arg(init, 3, "match", 1)
  local ls, lp = #s, #p
  init = posrelat(init, ls)
  local info = analyse(p)
  if info.ok then
    local cost = c_cost(info, ls, lp, info.anchored and 1 or (ls - init + 2))
    if cost <= C_BOUND then
      charge(floor(cost / 64))
      return c_result(pcall(C_match, s, p, init))
    end
  end
  return rethrow(pcall(lua_find, s, p, init, false))
end

local function gmatch_general(s, p, init)
  s = string_arg(s, 1, "gmatch")
  p = string_arg(p, 2, "gmatch")
  init = integer_arg(init, 3, "gmatch", 1)
  local ls, lp = #s, #p
  local info = analyse(p, true)
  if info.ok then
    local cost = c_cost(info, ls, lp, ls + 2)
    if cost <= C_BOUND then
      charge(floor(cost / 64))
      return C_gmatch(s, p, init)
    end
  end
  local it = lua_gmatch(s, p, init)
  return function()
    return rethrow(pcall(it))
  end
end

-- A replacement string is checked up front so that the C path cannot fail half-way: the
-- highest capture it uses (-1 when it is malformed), kept for the last few strings.
local replacement_checked, replacement_count = {}, 0

local function highest_capture(repl)
  local highest, i = 0, 1
  while true do
    local j = sfind(repl, "%", i, true)
    if j == nil then
      return highest
    end
    local c = sbyte(repl, j + 1)
    if c == nil or not (c == L_ESC or (c >= 48 and c <= 57)) then
      return -1
    end
    if c >= 49 and c <= 57 and c - 48 > highest then
      highest = c - 48
    end
    i = j + 2
  end
end

local function replacement_ok(repl, ncaptures)
  local highest = replacement_checked[repl]
  if highest == nil then
    highest = highest_capture(repl)
    if replacement_count >= 256 then
      replacement_checked, replacement_count = {}, 0
    end
    replacement_checked[repl] = highest
    replacement_count = replacement_count + 1
  end
  -- %1 is the whole match when there are no captures (as in C).
  return highest >= 0 and highest <= (ncaptures > 0 and ncaptures or 1)
end

local function gsub_general(s, p, repl, n)
  s = string_arg(s, 1, "gsub")
  p = string_arg(p, 2, "gsub")
  local tr = type(repl)
  if tr ~= "string" and tr ~= "number" and tr ~= "table" and tr ~= "function" then
    bad_argument(3, "gsub", "string/function/table", repl, 2)
  end
  local ls, lp = #s, #p
  n = integer_arg(n, 4, "gsub", ls + 1)
  local info = analyse(p)
  if info.ok and (tr ~= "string" or replacement_ok(repl, info.captures)) then
    local cost = c_cost(info, ls, lp, info.anchored and 1 or (ls + 2))
    if cost <= C_BOUND then
      charge(floor(cost / 64))
      return c_result(pcall(C_gsub, s, p, repl, n))
    end
  end
  return rethrow(pcall(lua_gsub, s, p, repl, n))
end

-- The fast paths: string arguments, a pattern already analysed (valid) whose bound is small.
-- C is then called directly (a tail call): it cannot fail on these arguments except for
-- running out of memory. Everything else takes the general path.

-- The bound for a valid pattern with e <= 2 (nil when larger: the general path decides).
local function quick_cost(info, ls, lp, positions)
  local e = info.e
  local cost = positions * (lp + 1)
  if e == 0 then
    return cost
  elseif e == 1 then
    return cost * (ls + 1)
  elseif e == 2 then
    return cost * (ls + 1) * (ls + 1)
  end
  return nil
end

function M.find(s, p, init, plain)
  if type(s) == "string" and type(p) == "string" and (init == nil or math_type(init) == "integer") then
    local info = analysed[p]
    if info ~= nil and info.ok then
      local ls, lp = #s, #p
      if plain or info.plain then
        if lp <= 8 or (ls + 2) * (lp + 1) <= C_BOUND then
          if ls >= 1024 then
            charge(ls >> 4)
          end
          return C_find(s, p, init, plain)
        end
      else
        local positions = info.anchored and 1 or ls + 2
        local cost = info.e == 0 and positions * (lp + 1) or quick_cost(info, ls, lp, positions)
        if cost ~= nil and cost <= C_BOUND then
          if cost >= 65536 then
            charge(cost >> 6)
          end
          return C_find(s, p, init)
        end
      end
    end
  end
  return find_general(s, p, init, plain)
end

function M.match(s, p, init)
  if type(s) == "string" and type(p) == "string" and (init == nil or math_type(init) == "integer") then
    local info = analysed[p]
    if info ~= nil and info.ok then
      local ls, lp = #s, #p
      local positions = info.anchored and 1 or ls + 2
      local cost = info.e == 0 and positions * (lp + 1) or quick_cost(info, ls, lp, positions)
      if cost ~= nil and cost <= C_BOUND then
        if cost >= 65536 then
          charge(cost >> 6)
        end
        return C_match(s, p, init)
      end
    end
  end
  return match_general(s, p, init)
end

function M.gmatch(s, p, init)
  if type(s) == "string" and type(p) == "string" and (init == nil or math_type(init) == "integer") then
    local info = analysed["\0" .. p]
    if info ~= nil and info.ok then
      local ls = #s
      local cost = quick_cost(info, ls, #p, ls + 2)
      if cost ~= nil and cost <= C_BOUND then
        if cost >= 65536 then
          charge(cost >> 6)
        end
        return C_gmatch(s, p, init)
      end
    end
  end
  return gmatch_general(s, p, init)
end

function M.gsub(s, p, repl, n)
  local tr = type(repl)
  if
    type(s) == "string"
    and type(p) == "string"
    and (tr == "function" or tr == "table" or tr == "string")
    and (n == nil or math_type(n) == "integer")
  then
    local info = analysed[p]
    local highest = tr == "string" and replacement_checked[repl]
    if
      info ~= nil
      and info.ok
      and (tr ~= "string" or (highest ~= nil and highest >= 0 and highest <= (info.captures > 0 and info.captures or 1)))
    then
      local ls, lp = #s, #p
      local positions = info.anchored and 1 or ls + 2
      local cost = info.e == 0 and positions * (lp + 1) or quick_cost(info, ls, lp, positions)
      if cost ~= nil and cost <= C_BOUND then
        if cost >= 65536 then
          charge(cost >> 6)
        end
        return C_gsub(s, p, repl, n)
      end
    end
  end
  return gsub_general(s, p, repl, n)
end

-- Exposed for the tests: the pure-Lua matcher on its own.
M.lua_find = function(s, p, init)
  return rethrow(pcall(lua_find, s, p, init or 1, true))
end
M.lua_match = function(s, p, init)
  return rethrow(pcall(lua_find, s, p, init or 1, false))
end
M.lua_gsub = function(s, p, repl, n)
  return rethrow(pcall(lua_gsub, s, p, repl, n or (#s + 1)))
end
M.lua_gmatch = function(s, p, init)
  local it = lua_gmatch(s, p, init or 1)
  return function()
    return rethrow(pcall(it))
  end
end

return M
