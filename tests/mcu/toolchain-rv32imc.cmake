# RISC-V RV32IMC, the ESP32-C3 class (no FPU: float is soft-float), with
# picolibc and semihosting, run under QEMU's virt board with -bios none:
# code at the start of RAM (0x80000000), data 4 MiB above it.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR riscv32)
set(CMAKE_C_COMPILER riscv64-unknown-elf-gcc)
set(CMAKE_SIZE riscv64-unknown-elf-size)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(VIGIL_MCU_ARCH_FLAGS "-march=rv32imc -mabi=ilp32")
set(VIGIL_MCU_FLASH 0x80000000)
set(VIGIL_MCU_RAM   0x80400000)
include(${CMAKE_CURRENT_LIST_DIR}/picolibc-semihost.cmake)
