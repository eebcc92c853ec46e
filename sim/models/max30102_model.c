/* max30102_model — see max30102_model.h. */
#include "max30102_model.h"

#include <string.h>

#include "max30102.h"

static const uint32_t max_model__rates[8] = {50, 100, 200, 400, 800, 1000, 1600, 3200};

static void max_model__por(max_model *m)
{
    memset(m->regs, 0, sizeof m->regs);
    m->regs[MAX30102_REG_INT_STATUS1] = 0x01; /* PWR_RDY */
    m->regs[MAX30102_REG_REV_ID] = 0x03;
    m->regs[MAX30102_REG_PART_ID] = m->part_id;
    m->fifo_count = 0;
    m->acc_red = m->acc_ir = 0;
    m->acc_n = 0;
}

void max_model_init(max_model *m, const ppg_synth_config *synth_cfg)
{
    memset(m, 0, sizeof(*m));
    m->addr = MAX30102_ADDR;
    m->part_id = MAX30102_PART_ID;
    m->reset_busy_ms = 1;
    m->die_temp_c = 31.5f;
    max_model__por(m);
    max_model_set_synth(m, synth_cfg);
}

void max_model_set_synth(max_model *m, const ppg_synth_config *synth_cfg)
{
    ppg_synth_config c;
    if (synth_cfg != NULL)
        c = *synth_cfg;
    else
        ppg_synth_default_config(&c);
    /* The synth runs at the raw ADC rate; the reference config is 100 sps. */
    c.fs_hz = 100.0f;
    ppg_synth_init(&m->synth, &c);
}

void max_model_set_source(max_model *m, max_model_source_fn fn, void *ctx)
{
    m->source = fn;
    m->source_ctx = ctx;
}

unsigned max_model_fifo_level(const max_model *m)
{
    return m->fifo_count;
}

void max_model_push_sample(max_model *m, uint32_t red, uint32_t ir)
{
    uint8_t *wr = &m->regs[MAX30102_REG_FIFO_WR_PTR], *rd = &m->regs[MAX30102_REG_FIFO_RD_PTR];
    uint8_t *ovf = &m->regs[MAX30102_REG_OVF_COUNTER];
    bool rollover = (m->regs[MAX30102_REG_FIFO_CONFIG] & 0x10) != 0;
    if (m->fifo_count >= 32) {
        if (*ovf < 0x1F)
            (*ovf)++;
        m->samples_dropped++;
        if (!rollover)
            return; /* FIFO frozen until the host reads */
        *rd = (uint8_t)((*rd + 1) & 0x1F); /* oldest sample overwritten */
        m->fifo_count--;
    }
    m->fifo_red[*wr & 0x1F] = red & 0x3FFFF;
    m->fifo_ir[*wr & 0x1F] = ir & 0x3FFFF;
    *wr = (uint8_t)((*wr + 1) & 0x1F);
    m->fifo_count++;
    m->samples_pushed++;
    m->regs[MAX30102_REG_INT_STATUS1] |= 0x40; /* PPG_RDY */
    if (32u - m->fifo_count <= (m->regs[MAX30102_REG_FIFO_CONFIG] & 0x0Fu))
        m->regs[MAX30102_REG_INT_STATUS1] |= 0x80; /* A_FULL */
}

static bool max_model__sampling(const max_model *m)
{
    uint8_t mode = m->regs[MAX30102_REG_MODE_CONFIG];
    uint8_t ledm = mode & 0x07;
    return !(mode & (MAX30102_MODE_SHDN | MAX30102_MODE_RESET)) &&
           (ledm == MAX30102_MODE_HR || ledm == MAX30102_MODE_SPO2 || ledm == 0x07);
}

static void max_model__convert(max_model *m)
{
    uint32_t red = 0, ir = 0;
    double t = (double)m->now_us / 1e6;
    if (m->source != NULL) {
        m->source(m->source_ctx, t, &red, &ir);
    } else {
        ppg_synth_next(&m->synth, &red, &ir);
    }
    if (red > 0x3FFFF)
        red = 0x3FFFF;
    if (ir > 0x3FFFF)
        ir = 0x3FFFF;
    if ((m->regs[MAX30102_REG_MODE_CONFIG] & 0x07) == MAX30102_MODE_HR)
        ir = 0; /* HR mode: red only */
    m->acc_red += red;
    m->acc_ir += ir;
    m->acc_n++;
    uint32_t ave = 1u << ((m->regs[MAX30102_REG_FIFO_CONFIG] >> 5) & 0x07);
    if (ave > 32)
        ave = 32;
    if (m->acc_n >= ave) {
        max_model_push_sample(m, (uint32_t)(m->acc_red / ave), (uint32_t)(m->acc_ir / ave));
        m->acc_red = m->acc_ir = 0;
        m->acc_n = 0;
    }
}

void max_model_advance(max_model *m, uint32_t ms)
{
    uint64_t end = m->now_us + (uint64_t)ms * 1000u;
    while (m->now_us < end) {
        if ((m->regs[MAX30102_REG_MODE_CONFIG] & MAX30102_MODE_RESET) &&
            m->reset_busy_ms != 0xFFFFFFFFu && m->now_us >= m->reset_done_us) {
            max_model__por(m); /* reset completes: registers back to POR */
            m->next_sample_us = m->now_us;
        }
        if (!max_model__sampling(m)) {
            m->now_us += 1000; /* idle: step by 1 ms */
            if (m->now_us > end)
                m->now_us = end;
            m->next_sample_us = m->now_us;
            continue;
        }
        uint32_t sps = max_model__rates[(m->regs[MAX30102_REG_SPO2_CONFIG] >> 2) & 0x07];
        if (m->next_sample_us < m->now_us)
            m->next_sample_us = m->now_us;
        if (m->next_sample_us >= end) {
            m->now_us = end;
            break;
        }
        m->now_us = m->next_sample_us;
        max_model__convert(m);
        m->next_sample_us = m->now_us + 1000000u / sps;
    }
    /* A reset that completes exactly at the end of the interval. */
    if ((m->regs[MAX30102_REG_MODE_CONFIG] & MAX30102_MODE_RESET) &&
        m->reset_busy_ms != 0xFFFFFFFFu && m->now_us >= m->reset_done_us) {
        max_model__por(m);
        m->next_sample_us = m->now_us;
    }
}

static void max_model__write_reg(max_model *m, uint8_t reg, uint8_t v)
{
    switch (reg) {
    case MAX30102_REG_INT_STATUS1:
    case MAX30102_REG_INT_STATUS2:
    case MAX30102_REG_REV_ID:
    case MAX30102_REG_PART_ID:
    case MAX30102_REG_FIFO_DATA:
    case MAX30102_REG_TEMP_INT:
    case MAX30102_REG_TEMP_FRAC:
        return; /* read-only */
    case MAX30102_REG_FIFO_WR_PTR:
    case MAX30102_REG_FIFO_RD_PTR:
        m->regs[reg] = v & 0x1F;
        m->fifo_count = (uint8_t)((m->regs[MAX30102_REG_FIFO_WR_PTR] -
                                   m->regs[MAX30102_REG_FIFO_RD_PTR]) & 0x1F);
        return;
    case MAX30102_REG_OVF_COUNTER:
        m->regs[reg] = v & 0x1F;
        return;
    case MAX30102_REG_MODE_CONFIG:
        m->regs[reg] = v;
        if (v & MAX30102_MODE_RESET)
            m->reset_done_us = m->now_us + (uint64_t)m->reset_busy_ms * 1000u;
        return;
    case MAX30102_REG_TEMP_CONFIG:
        if (v & 0x01) { /* conversion is instant in the model */
            float t = m->die_temp_c;
            int ti = (int)(t >= 0 ? t : t - 0.9375f);
            float frac = t - (float)ti;
            m->regs[MAX30102_REG_TEMP_INT] = (uint8_t)(int8_t)ti;
            m->regs[MAX30102_REG_TEMP_FRAC] = (uint8_t)(frac / 0.0625f) & 0x0F;
            m->regs[MAX30102_REG_INT_STATUS2] |= 0x02;
        }
        m->regs[reg] = 0;
        return;
    default:
        m->regs[reg] = v;
        return;
    }
}

static uint8_t max_model__read_reg(max_model *m, uint8_t reg)
{
    uint8_t v = m->regs[reg];
    if (reg == MAX30102_REG_INT_STATUS1 || reg == MAX30102_REG_INT_STATUS2)
        m->regs[reg] = 0; /* cleared on read */
    return v;
}

/* Pops one sample into 3 (HR) or 6 (SpO2) bytes. Empty FIFO: repeats the
 * last slot without moving the pointers, like a stale read. */
static void max_model__pop(max_model *m, uint8_t *b, size_t nbytes)
{
    uint8_t *rd = &m->regs[MAX30102_REG_FIFO_RD_PTR];
    uint32_t red = m->fifo_red[*rd & 0x1F], ir = m->fifo_ir[*rd & 0x1F];
    b[0] = (uint8_t)(red >> 16);
    b[1] = (uint8_t)(red >> 8);
    b[2] = (uint8_t)red;
    if (nbytes >= 6) {
        b[3] = (uint8_t)(ir >> 16);
        b[4] = (uint8_t)(ir >> 8);
        b[5] = (uint8_t)ir;
    }
    if (m->fifo_count > 0) {
        *rd = (uint8_t)((*rd + 1) & 0x1F);
        m->fifo_count--;
        m->regs[MAX30102_REG_OVF_COUNTER] = 0;
    }
}

i2c_status max_model_write_read(void *ctx, uint8_t addr, const uint8_t *w, size_t wlen,
                                uint8_t *r, size_t rlen)
{
    max_model *m = ctx;
    if (addr != m->addr)
        return I2C_ENACK;
    if (m->nack_transactions > 0) {
        m->nack_transactions--;
        return I2C_ENACK;
    }
    if (wlen == 0)
        return rlen == 0 ? I2C_OK : I2C_ENACK; /* reads need a register first */
    uint8_t reg = w[0];
    for (size_t i = 1; i < wlen; i++) {
        max_model__write_reg(m, reg, w[i]);
        if (reg != MAX30102_REG_FIFO_DATA)
            reg++;
    }
    if (rlen == 0)
        return I2C_OK;
    if (reg == MAX30102_REG_FIFO_DATA) {
        size_t per = (m->regs[MAX30102_REG_MODE_CONFIG] & 0x07) == MAX30102_MODE_HR ? 3 : 6;
        size_t i = 0;
        for (; i + per <= rlen; i += per)
            max_model__pop(m, r + i, per);
        for (; i < rlen; i++)
            r[i] = 0; /* partial sample: not popped */
        return I2C_OK;
    }
    for (size_t i = 0; i < rlen; i++)
        r[i] = max_model__read_reg(m, (uint8_t)(reg + i));
    return I2C_OK;
}

static void max_model__delay(void *ctx, uint32_t ms)
{
    max_model_advance(ctx, ms);
}

void max_model_bus(max_model *m, i2c_bus *bus)
{
    bus->write_read = max_model_write_read;
    bus->recover = NULL;
    bus->delay_ms = max_model__delay;
    bus->ctx = m;
}
