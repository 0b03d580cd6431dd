/* Entry of the demo guest: the VMM starts us in 64-bit mode with paging on,
 * %rdi = address of struct us_boot_info. We only need a stack. */
    .section .text.start, "ax"
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    xor %ebp, %ebp
    call guest_main
1:  hlt
    jmp 1b

    .section .bss
    .balign 16
stack_bottom:
    .skip 65536
stack_top:
    .section .note.GNU-stack, "", @progbits
