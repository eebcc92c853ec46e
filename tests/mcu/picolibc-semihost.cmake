# Shared by the MCU toolchain files: picolibc, its semihosting OS library and
# crt0, and the memory map handed to picolibc.ld. 4 MiB code + 4 MiB data is
# the emulated board's, not a product's: the product budgets are checked on
# the core library alone (see docs/DEVICE.md). 64 KiB stack: the tests keep
# large fixtures on the stack; the rest of RAM is heap.
string(JOIN " " VIGIL_MCU_LINK_FLAGS
  "--oslib=semihost --crt0=semihost"
  "-Wl,--defsym=__flash=${VIGIL_MCU_FLASH} -Wl,--defsym=__flash_size=0x400000"
  "-Wl,--defsym=__ram=${VIGIL_MCU_RAM} -Wl,--defsym=__ram_size=0x400000"
  "-Wl,--defsym=__stack_size=0x10000")
set(CMAKE_C_FLAGS_INIT "${VIGIL_MCU_ARCH_FLAGS} --specs=picolibc.specs -ffunction-sections -fdata-sections")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${VIGIL_MCU_ARCH_FLAGS} ${VIGIL_MCU_LINK_FLAGS} -Wl,--gc-sections")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
