# device_core_size_<mcu>: reads the `size -t` report of the cross-built core
# library (written by tests/mcu/target after every build) and checks the
# budgets of docs/DEVICE.md: text ≤ 32 KiB, static RAM (data + bss) ≤ 8 KiB.
# State the firmware owns (ppg_state, session, outbox and its page buffer) is
# not static in the core and is reported by device_ppg_budget_<mcu>.
# Usage: cmake -DSIZE_TXT=<file> -DTARGET=<name> -P core_size.cmake
set(text_budget 32768)
set(ram_budget 8192)
if(NOT EXISTS "${SIZE_TXT}")
  message(FATAL_ERROR "${SIZE_TXT} missing: build first (cmake --build build)")
endif()
file(STRINGS "${SIZE_TXT}" lines REGEX "\\(TOTALS\\)")
if(NOT lines MATCHES "^[ \t]*([0-9]+)[ \t]+([0-9]+)[ \t]+([0-9]+)")
  message(FATAL_ERROR "no TOTALS line in ${SIZE_TXT}")
endif()
set(text ${CMAKE_MATCH_1})
set(data ${CMAKE_MATCH_2})
set(bss ${CMAKE_MATCH_3})
math(EXPR ram "${data} + ${bss}")
message("device core on ${TARGET}: text ${text} B (budget ${text_budget}), "
        "data ${data} B + bss ${bss} B = ${ram} B static RAM (budget ${ram_budget})")
if(text GREATER text_budget OR ram GREATER ram_budget)
  message("0 passed, 1 failed")
  message(FATAL_ERROR "device core over budget on ${TARGET}")
endif()
message("1 passed, 0 failed")
