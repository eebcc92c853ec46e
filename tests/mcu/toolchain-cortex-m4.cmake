# Cortex-M4F (single-precision FPU) with picolibc and semihosting, run under
# QEMU's mps2-an386 board: 4 MiB SSRAM at 0x0 for code, 4 MiB at 0x20000000
# for data. picolibc's crt0-semihost sets up the vector table, FPU, .data/.bss,
# and turns main's return into a semihosting exit status.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_SIZE arm-none-eabi-size)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(VIGIL_MCU_ARCH_FLAGS "-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard")
set(VIGIL_MCU_FLASH 0x00000000)
set(VIGIL_MCU_RAM   0x20000000)
include(${CMAKE_CURRENT_LIST_DIR}/picolibc-semihost.cmake)
