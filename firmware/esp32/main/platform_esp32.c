/* platform_esp32 — see platform_esp32.h. */
#include "platform_esp32.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "driver/gpio.h"
#include "driver/i2c_master.h"
#include "esp_check.h"
#include "esp_log.h"
#include "esp_partition.h"
#include "esp_netif_sntp.h"
#include "esp_sntp.h"
#include "esp_timer.h"
#include "esp_wifi.h"
#include "nvs.h"
#include "nvs_flash.h"
#include "sdkconfig.h"

#include "max30102.h"
#include "mlx90614.h"

static const char *TAG = "vigil.plat";

static i2c_master_bus_handle_t s_bus;
static i2c_master_dev_handle_t s_mlx, s_max;
static pesp *s_self; /* for the SNTP callback, which has no context argument */

/* ---- clocks ---- */

static uint64_t pesp_mono_ms(void *ctx)
{
    return (uint64_t)(esp_timer_get_time() / 1000);
}

static bool pesp_wall_ms(void *ctx, uint64_t *ms)
{
    pesp *p = ctx;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    *ms = (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
    return p->time_synced;
}

static void pesp_sntp_cb(struct timeval *tv)
{
    if (s_self)
        s_self->time_synced = true;
}

void pesp_sntp_start(pesp *p)
{
    s_self = p;
    esp_sntp_config_t cfg = ESP_NETIF_SNTP_DEFAULT_CONFIG("pool.ntp.org");
    cfg.sync_cb = pesp_sntp_cb;
    esp_netif_sntp_init(&cfg); /* readings go out without "ts" until synced */
}

/* ---- MQTT ---- */

static platform_status pesp_publish(void *ctx, const char *topic, const void *payload, size_t len,
                                    int qos, bool retain)
{
    pesp *p = ctx;
    if (!p->connected)
        return PLATFORM_ENOTCONN;
    /* enqueue, not publish: esp_mqtt_client_publish can block for the
     * whole network timeout (esp-mqtt #230) and stall sampling. */
    int id = esp_mqtt_client_enqueue(p->mqtt, topic, payload, (int)len, qos, retain, true);
    if (id == -2)
        return PLATFORM_EFULL;
    return id < 0 ? PLATFORM_EIO : PLATFORM_OK;
}

static platform_status pesp_subscribe(void *ctx, const char *topic, int qos)
{
    pesp *p = ctx;
    return esp_mqtt_client_subscribe(p->mqtt, topic, qos) < 0 ? PLATFORM_EIO : PLATFORM_OK;
}

static void pesp_post(pesp *p, pesp_ev_type type, const char *topic, int tlen, const char *data,
                      int dlen)
{
    static pesp_event ev; /* the MQTT task is the only writer */
    ev.type = type;
    ev.topic[0] = '\0';
    ev.len = 0;
    if (type == PESP_EV_DATA) {
        if (tlen <= 0 || tlen >= PESP_TOPIC_MAX || dlen < 0 || dlen > PESP_PAYLOAD_MAX)
            return; /* not ours or too big: the session would refuse it anyway */
        memcpy(ev.topic, topic, (size_t)tlen);
        ev.topic[tlen] = '\0';
        memcpy(ev.payload, data, (size_t)dlen);
        ev.len = (uint16_t)dlen;
    }
    if (xQueueSend(p->events, &ev, pdMS_TO_TICKS(100)) != pdTRUE)
        ESP_LOGW(TAG, "event queue full, event %d dropped", (int)type);
}

static void pesp_mqtt_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    pesp *p = arg;
    esp_mqtt_event_handle_t e = data;
    switch ((esp_mqtt_event_id_t)id) {
    case MQTT_EVENT_CONNECTED:
        p->connected = true;
        pesp_post(p, PESP_EV_CONNECTED, NULL, 0, NULL, 0);
        break;
    case MQTT_EVENT_DISCONNECTED:
        p->connected = false;
        pesp_post(p, PESP_EV_DISCONNECTED, NULL, 0, NULL, 0);
        break;
    case MQTT_EVENT_DATA:
        /* Fragmented messages (larger than the MQTT buffer) are ignored. */
        if (e->current_data_offset == 0 && e->data_len == e->total_data_len)
            pesp_post(p, PESP_EV_DATA, e->topic, e->topic_len, e->data, e->data_len);
        break;
    default:
        break;
    }
}

esp_err_t pesp_mqtt_start(pesp *p, const char *client_id, const char *lwt_topic,
                          const char *lwt_payload)
{
    esp_mqtt_client_config_t cfg = {
        .broker.address.uri = CONFIG_VIGIL_BROKER_URI,
        .credentials.client_id = client_id,
        .credentials.username = CONFIG_VIGIL_MQTT_USERNAME[0] ? CONFIG_VIGIL_MQTT_USERNAME : NULL,
        .credentials.authentication.password =
            CONFIG_VIGIL_MQTT_PASSWORD[0] ? CONFIG_VIGIL_MQTT_PASSWORD : NULL,
        .session.keepalive = CONFIG_VIGIL_MQTT_KEEPALIVE_S,
        .session.last_will = {.topic = lwt_topic, .msg = lwt_payload,
                              .msg_len = (int)strlen(lwt_payload), .qos = 1, .retain = 1},
        .network.reconnect_timeout_ms = 5000,
        .buffer.size = 2048,
    };
    /* A provisioned unit: verify the broker with the deployment's CA and log
     * in with the unit's certificate (the broker takes its CN as username
     * and client id). PEM, NUL-terminated, so no lengths. */
    if (p->id.ca_pem)
        cfg.broker.verification.certificate = p->id.ca_pem;
    if (p->id.client_crt) {
        cfg.credentials.authentication.certificate = p->id.client_crt;
        cfg.credentials.authentication.key = p->id.client_key;
    }
    p->mqtt = esp_mqtt_client_init(&cfg);
    if (!p->mqtt)
        return ESP_FAIL;
    esp_mqtt_client_register_event(p->mqtt, ESP_EVENT_ANY_ID, pesp_mqtt_event, p);
    return esp_mqtt_client_start(p->mqtt);
}

int pesp_rssi(void)
{
    wifi_ap_record_t ap;
    return esp_wifi_sta_get_ap_info(&ap) == ESP_OK ? ap.rssi : 1;
}

/* ---- NVS ---- */

/* One string of the identity namespace, malloc'd (NULL when absent). */
static char *pesp_id_str(nvs_handle_t h, const char *key)
{
    size_t len = 0;
    if (nvs_get_str(h, key, NULL, &len) != ESP_OK || len < 2)
        return NULL;
    char *s = malloc(len);
    if (s && nvs_get_str(h, key, s, &len) != ESP_OK) {
        free(s);
        s = NULL;
    }
    return s;
}

/* Reads the provisioned identity (see pesp_identity). A unit without the
 * partition or the namespace runs on its Kconfig settings. */
static void pesp_load_identity(pesp *p)
{
    const char *part = CONFIG_VIGIL_IDENTITY_PARTITION;
    nvs_handle_t h;
    if (nvs_flash_init_partition(part) != ESP_OK ||
        nvs_open_from_partition(part, "vigil_id", NVS_READONLY, &h) != ESP_OK) {
        ESP_LOGI(TAG, "no identity partition '%s': Kconfig credentials", part);
        return;
    }
    size_t len = sizeof p->id.device_id;
    if (nvs_get_str(h, "device_id", p->id.device_id, &len) != ESP_OK)
        p->id.device_id[0] = '\0';
    p->id.ca_pem = pesp_id_str(h, "ca_pem");
    p->id.client_crt = pesp_id_str(h, "client_crt");
    p->id.client_key = pesp_id_str(h, "client_key");
    nvs_close(h);
    if (!p->id.client_crt != !p->id.client_key) {
        ESP_LOGE(TAG, "identity: certificate without key (or key without certificate): ignored");
        free(p->id.client_crt);
        free(p->id.client_key);
        p->id.client_crt = p->id.client_key = NULL;
    }
    /* Never log the key; the id and whether a certificate is there only. */
    ESP_LOGI(TAG, "identity '%s': ca %s, client certificate %s", p->id.device_id,
             p->id.ca_pem ? "yes" : "no", p->id.client_crt ? "yes" : "no");
}

static platform_status pesp_kv_get(void *ctx, const char *key, uint32_t *v)
{
    pesp *p = ctx;
    esp_err_t e = nvs_get_u32((nvs_handle_t)p->nvs, key, v);
    if (e == ESP_ERR_NVS_NOT_FOUND)
        return PLATFORM_ENOTFOUND;
    return e == ESP_OK ? PLATFORM_OK : PLATFORM_EIO;
}

static platform_status pesp_kv_set(void *ctx, const char *key, uint32_t v)
{
    pesp *p = ctx;
    if (nvs_set_u32((nvs_handle_t)p->nvs, key, v) != ESP_OK ||
        nvs_commit((nvs_handle_t)p->nvs) != ESP_OK)
        return PLATFORM_EIO;
    return PLATFORM_OK;
}

/* ---- misc ---- */

static void pesp_log(void *ctx, platform_log_level lvl, const char *msg)
{
    switch (lvl) {
    case PLATFORM_LOG_ERROR: ESP_LOGE("vigil", "%s", msg); break;
    case PLATFORM_LOG_WARN: ESP_LOGW("vigil", "%s", msg); break;
    case PLATFORM_LOG_INFO: ESP_LOGI("vigil", "%s", msg); break;
    default: ESP_LOGD("vigil", "%s", msg); break;
    }
}

static void pesp_reboot(void *ctx)
{
    ((pesp *)ctx)->reboot_requested = true; /* main loop restarts after the ack is out */
}

static void pesp_identify(void *ctx)
{
    ((pesp *)ctx)->identify_blinks = 20;
}

/* ---- I2C ---- */

static i2c_status pesp_i2c_xfer(void *ctx, uint8_t addr, const uint8_t *w, size_t wlen, uint8_t *r,
                                size_t rlen)
{
    i2c_master_dev_handle_t dev = addr == MLX90614_ADDR_DEFAULT ? s_mlx
                                  : addr == MAX30102_ADDR       ? s_max
                                                                : NULL;
    if (!dev)
        return I2C_ENACK;
    esp_err_t e;
    if (wlen && rlen)
        e = i2c_master_transmit_receive(dev, w, wlen, r, rlen, 50); /* repeated start */
    else if (wlen)
        e = i2c_master_transmit(dev, w, wlen, 50);
    else
        e = i2c_master_receive(dev, r, rlen, 50);
    if (e == ESP_OK)
        return I2C_OK;
    return e == ESP_ERR_TIMEOUT ? I2C_ETIMEOUT : e == ESP_FAIL ? I2C_ENACK : I2C_EBUS;
}

static i2c_status pesp_i2c_recover(void *ctx)
{
    return i2c_master_bus_reset(s_bus) == ESP_OK ? I2C_OK : I2C_EBUS;
}

static void pesp_i2c_delay(void *ctx, uint32_t ms)
{
    TickType_t t = pdMS_TO_TICKS(ms);
    vTaskDelay(t ? t : 1);
}

/* ---- the outbox flash seam: esp_partition_* on the "outbox" partition ---- */

static platform_status pesp__flash_rc(esp_err_t e)
{
    return e == ESP_OK ? PLATFORM_OK : e == ESP_ERR_INVALID_ARG || e == ESP_ERR_INVALID_SIZE
                                           ? PLATFORM_EINVAL
                                           : PLATFORM_EIO;
}

static platform_status pesp__f_read(void *ctx, uint32_t off, void *buf, size_t len)
{
    return pesp__flash_rc(esp_partition_read(((pesp *)ctx)->part, off, buf, len));
}

static platform_status pesp__f_program(void *ctx, uint32_t off, const void *buf, size_t len)
{
    return pesp__flash_rc(esp_partition_write(((pesp *)ctx)->part, off, buf, len));
}

static platform_status pesp__f_erase(void *ctx, uint32_t off, size_t len)
{
    return pesp__flash_rc(esp_partition_erase_range(((pesp *)ctx)->part, off, len));
}

static esp_err_t pesp__flash_init(pesp *p)
{
    const esp_partition_t *part =
        esp_partition_find_first(ESP_PARTITION_TYPE_DATA, 0x40, "outbox");
    if (!part)
        return ESP_ERR_NOT_FOUND;
    p->part = part;
    p->flash = (platform_flash){.read = pesp__f_read, .program = pesp__f_program,
                                .erase = pesp__f_erase, .size = part->size,
                                .sector_size = part->erase_size,
                                /* 16-byte blocks when flash encryption is on */
                                .prog_size = part->encrypted ? 16 : 4, .ctx = p};
    return ESP_OK;
}

esp_err_t pesp_init(pesp *p)
{
    esp_err_t e = nvs_flash_init();
    if (e == ESP_ERR_NVS_NO_FREE_PAGES || e == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        ESP_ERROR_CHECK(nvs_flash_erase());
        e = nvs_flash_init();
    }
    ESP_RETURN_ON_ERROR(e, TAG, "nvs init");
    nvs_handle_t h;
    ESP_RETURN_ON_ERROR(nvs_open("vigil", NVS_READWRITE, &h), TAG, "nvs open");
    p->nvs = (uint32_t)h;
    pesp_load_identity(p);
    ESP_RETURN_ON_ERROR(pesp__flash_init(p), TAG, "outbox partition");

    i2c_master_bus_config_t bc = {
        .i2c_port = I2C_NUM_0,
        .sda_io_num = CONFIG_VIGIL_I2C_SDA,
        .scl_io_num = CONFIG_VIGIL_I2C_SCL,
        .clk_source = I2C_CLK_SRC_DEFAULT,
        .glitch_ignore_cnt = 7,
        .flags.enable_internal_pullup = true,
    };
    ESP_RETURN_ON_ERROR(i2c_new_master_bus(&bc, &s_bus), TAG, "i2c bus");
    /* Speed is per device: the MLX90614's SMBus tops out at 100 kHz. */
    i2c_device_config_t mlx = {.dev_addr_length = I2C_ADDR_BIT_LEN_7,
                               .device_address = MLX90614_ADDR_DEFAULT, .scl_speed_hz = 100000};
    i2c_device_config_t max = {.dev_addr_length = I2C_ADDR_BIT_LEN_7,
                               .device_address = MAX30102_ADDR, .scl_speed_hz = 400000};
    ESP_RETURN_ON_ERROR(i2c_master_bus_add_device(s_bus, &mlx, &s_mlx), TAG, "mlx");
    ESP_RETURN_ON_ERROR(i2c_master_bus_add_device(s_bus, &max, &s_max), TAG, "max");
    p->bus = (i2c_bus){.write_read = pesp_i2c_xfer, .recover = pesp_i2c_recover,
                       .delay_ms = pesp_i2c_delay, .ctx = p};

    p->events = xQueueCreate(4, sizeof(pesp_event));
    if (!p->events)
        return ESP_ERR_NO_MEM;
    if (CONFIG_VIGIL_LED_GPIO >= 0) {
        gpio_reset_pin(CONFIG_VIGIL_LED_GPIO);
        gpio_set_direction(CONFIG_VIGIL_LED_GPIO, GPIO_MODE_OUTPUT);
    }
    p->plat = (platform){.mono_ms = pesp_mono_ms, .wall_ms = pesp_wall_ms,
                         .publish = pesp_publish, .subscribe = pesp_subscribe,
                         .kv_get_u32 = pesp_kv_get, .kv_set_u32 = pesp_kv_set, .log = pesp_log,
                         .reboot = pesp_reboot, .identify = pesp_identify, .i2c = &p->bus,
                         .ctx = p};
    return ESP_OK;
}
