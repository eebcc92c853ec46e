/* Vigil wearable — ESP-IDF application entry point.
 *
 * A thin port: Wi-Fi + SNTP + NVS + I2C + esp-mqtt come from
 * platform_esp32.c; everything that decides anything (sampling cadence,
 * seq/boot, store-and-forward, config and commands) is the portable device
 * core in ../../device, the same code vigil-sim and the tests run.
 *
 * One task (app_main's) owns the session, the drivers and the PPG state:
 * it drains MQTT events from a queue, pulls the MAX30102 FIFO every 100 ms
 * into the PPG window, and calls session_tick, which samples when due. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "esp_event.h"
#include "esp_log.h"
#include "esp_mac.h"
#include "esp_netif.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/event_groups.h"
#include "freertos/task.h"
#include "driver/gpio.h"
#include "sdkconfig.h"

#include "max30102.h"
#include "mlx90614.h"
#include "outbox.h"
#include "platform_esp32.h"
#include "ppg.h"
#include "session.h"

static const char *TAG = "vigil";

static pesp s_plat;
static session s_session;
static outbox s_outbox;
static uint8_t s_outbox_page[OUTBOX_PAGE_BYTES(CONFIG_VIGIL_OUTBOX_PAGE_RECORDS)]; /* static: no malloc */
static mlx90614 s_mlx;
static max30102 s_max;
static ppg_state s_ppg;
static bool s_mlx_ok, s_max_ok;
static EventGroupHandle_t s_wifi;

static void wifi_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    if (base == WIFI_EVENT && (id == WIFI_EVENT_STA_START || id == WIFI_EVENT_STA_DISCONNECTED))
        esp_wifi_connect(); /* esp-mqtt reconnects by itself once IP is back */
    else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP)
        xEventGroupSetBits(s_wifi, 1);
}

static void wifi_start(void)
{
    s_wifi = xEventGroupCreate();
    ESP_ERROR_CHECK(esp_netif_init());
    ESP_ERROR_CHECK(esp_event_loop_create_default());
    esp_netif_create_default_wifi_sta();
    wifi_init_config_t ic = WIFI_INIT_CONFIG_DEFAULT();
    ESP_ERROR_CHECK(esp_wifi_init(&ic));
    ESP_ERROR_CHECK(esp_event_handler_register(WIFI_EVENT, ESP_EVENT_ANY_ID, wifi_event, NULL));
    ESP_ERROR_CHECK(esp_event_handler_register(IP_EVENT, IP_EVENT_STA_GOT_IP, wifi_event, NULL));
    wifi_config_t wc = {0};
    snprintf((char *)wc.sta.ssid, sizeof wc.sta.ssid, "%s", CONFIG_VIGIL_WIFI_SSID);
    snprintf((char *)wc.sta.password, sizeof wc.sta.password, "%s", CONFIG_VIGIL_WIFI_PASSWORD);
    ESP_ERROR_CHECK(esp_wifi_set_mode(WIFI_MODE_STA));
    ESP_ERROR_CHECK(esp_wifi_set_config(WIFI_IF_STA, &wc));
    ESP_ERROR_CHECK(esp_wifi_start());
}

/* Pulls whatever the FIFO holds into the PPG window. */
static void drain_fifo(void)
{
    if (!s_max_ok)
        return;
    max30102_sample buf[32];
    size_t n = 0;
    uint32_t lost = 0;
    if (max30102_read_fifo(&s_max, buf, 32, &n, &lost) != MAX30102_OK)
        return;
    if (lost)
        ppg_reset(&s_ppg);
    for (size_t i = 0; i < n; i++)
        ppg_push(&s_ppg, buf[i].red, buf[i].ir);
}

static bool sample(void *ctx, tenc_reading *r)
{
    drain_fifo();
    ppg_result pr;
    ppg_compute(&s_ppg, &pr);
    r->hr_valid = pr.hr_valid;
    r->heart_rate = pr.hr_bpm;
    r->spo2_valid = pr.spo2_valid;
    r->spo2 = pr.spo2_pct;
    float ta = NAN, to = NAN;
    bool ok = s_mlx_ok && mlx90614_read_ambient(&s_mlx, &ta) == MLX90614_OK;
    r->ambient_temp = ok ? ta : NAN;
    r->temp_valid = s_mlx_ok && mlx90614_read_object(&s_mlx, &to) == MLX90614_OK;
    r->object_temp = to;
    r->battery = -1; /* no fuel gauge on the reference board */
    r->rssi = pesp_rssi();
    return true;
}

static void device_id(char *out, size_t cap)
{
    if (s_plat.id.device_id[0]) { /* provisioned: the certificate's CN */
        snprintf(out, cap, "%s", s_plat.id.device_id);
        return;
    }
    if (CONFIG_VIGIL_DEVICE_ID[0]) {
        snprintf(out, cap, "%s", CONFIG_VIGIL_DEVICE_ID);
        return;
    }
    uint8_t mac[6];
    esp_read_mac(mac, ESP_MAC_WIFI_STA);
    snprintf(out, cap, "ESP32_%02X%02X%02X", mac[3], mac[4], mac[5]);
}

void app_main(void)
{
    ESP_ERROR_CHECK(pesp_init(&s_plat));
    const i2c_bus *bus = s_plat.plat.i2c;
    s_mlx_ok = mlx90614_init(&s_mlx, bus, 0) == MLX90614_OK;
    s_max_ok = max30102_init(&s_max, bus, 0) == MAX30102_OK;
    ppg_init(&s_ppg, NULL);
    if (!s_mlx_ok || !s_max_ok)
        ESP_LOGE(TAG, "sensor init: mlx=%d max=%d (readings will say invalid)", s_mlx_ok, s_max_ok);

    char id[65];
    device_id(id, sizeof id);
    if (outbox_init(&s_outbox, &s_plat.flash, s_outbox_page, CONFIG_VIGIL_OUTBOX_PAGE_RECORDS) !=
        OUTBOX_OK) {
        ESP_LOGE(TAG, "no usable \"outbox\" partition (partitions.csv)");
        return;
    }
    session_config cfg = {.device_id = id, .fw = VIGIL_VERSION,
                          .default_interval_ms = CONFIG_VIGIL_SAMPLE_INTERVAL_MS,
                          .drain_per_tick = 5, .sample = sample};
    if (session_init(&s_session, &s_plat.plat, &s_outbox, &cfg) != SESSION_OK) {
        ESP_LOGE(TAG, "invalid device id '%s'", id);
        return;
    }
    ESP_LOGI(TAG, "device %s boot %lu interval %lu ms", id, (unsigned long)s_session.boot,
             (unsigned long)s_session.interval_ms);

    wifi_start();
    xEventGroupWaitBits(s_wifi, 1, pdFALSE, pdTRUE, pdMS_TO_TICKS(15000));
    pesp_sntp_start(&s_plat);
    ESP_ERROR_CHECK(pesp_mqtt_start(&s_plat, id, session_lwt_topic(&s_session),
                                    session_lwt_payload()));

    static pesp_event ev;
    int64_t reboot_at = 0;
    for (;;) {
        /* Wake for MQTT events, the FIFO (every 100 ms) or the next reading. */
        uint64_t now = s_plat.plat.mono_ms(&s_plat);
        uint64_t due = session_next_due(&s_session);
        uint32_t wait = due > now ? (uint32_t)(due - now) : 0;
        if (wait > 100)
            wait = 100;
        while (xQueueReceive(s_plat.events, &ev, pdMS_TO_TICKS(wait)) == pdTRUE) {
            wait = 0;
            if (ev.type == PESP_EV_CONNECTED)
                session_on_connect(&s_session);
            else if (ev.type == PESP_EV_DISCONNECTED)
                session_on_disconnect(&s_session);
            else
                session_on_message(&s_session, ev.topic, ev.payload, ev.len);
        }
        drain_fifo();
        session_tick(&s_session);
        if (s_plat.identify_blinks > 0 && CONFIG_VIGIL_LED_GPIO >= 0)
            gpio_set_level(CONFIG_VIGIL_LED_GPIO, --s_plat.identify_blinks & 1);
        if (s_plat.reboot_requested && !reboot_at)
            reboot_at = esp_timer_get_time() + 500000; /* let the ack leave */
        if (reboot_at && esp_timer_get_time() >= reboot_at) {
            session_power_off(&s_session); /* END record: a clean stop */
            esp_restart();
        }
    }
}
