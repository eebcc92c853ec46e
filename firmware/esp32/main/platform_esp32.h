/* platform_esp32 — the device core's platform seam on ESP-IDF 5.2+.
 *
 * esp-mqtt (LWT, enqueue), esp_timer, SNTP, NVS (namespace "vigil"), the
 * I2C master driver (MLX90614 at 100 kHz, MAX30102 at 400 kHz on one bus).
 * MQTT events arrive on the esp-mqtt task and are posted to a queue that
 * the main task drains, so the session only ever runs on the main task. */
#ifndef VIGIL_PLATFORM_ESP32_H
#define VIGIL_PLATFORM_ESP32_H

#include <stdbool.h>
#include <stdint.h>

#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "mqtt_client.h"
#include "platform.h"

#define PESP_TOPIC_MAX 96
#define PESP_PAYLOAD_MAX 1024

typedef enum { PESP_EV_CONNECTED, PESP_EV_DISCONNECTED, PESP_EV_DATA } pesp_ev_type;

typedef struct pesp_event {
    pesp_ev_type type;
    uint16_t len;
    char topic[PESP_TOPIC_MAX];
    char payload[PESP_PAYLOAD_MAX];
} pesp_event;

/* The device's identity, written once per unit by
 * scripts/provision-device.sh into the read-only NVS partition
 * CONFIG_VIGIL_IDENTITY_PARTITION (namespace "vigil_id"): the device id (the
 * certificate's CN), the CA that verifies the broker and the client
 * certificate + key (PEM). Empty/NULL when the unit is not provisioned: then
 * the Kconfig values apply. Loaded by pesp_init, never freed. */
typedef struct pesp_identity {
    char device_id[65];
    char *ca_pem;
    char *client_crt;
    char *client_key;
} pesp_identity;

typedef struct pesp {
    platform plat;
    pesp_identity id;
    i2c_bus bus;
    esp_mqtt_client_handle_t mqtt;
    QueueHandle_t events;
    volatile bool connected;
    volatile bool time_synced;
    bool reboot_requested;
    int identify_blinks;
    uint32_t nvs; /* nvs_handle_t */
    /* The outbox seam on the "outbox" data partition (esp_partition_*). */
    platform_flash flash;
    const void *part; /* const esp_partition_t * */
} pesp;

/* NVS, I2C bus and device handles; fills p->plat (mqtt comes later). */
esp_err_t pesp_init(pesp *p);
/* Starts esp-mqtt with the session's last will. */
esp_err_t pesp_mqtt_start(pesp *p, const char *client_id, const char *lwt_topic,
                          const char *lwt_payload);
/* Starts SNTP; time_synced becomes true in its callback. */
void pesp_sntp_start(pesp *p);
int pesp_rssi(void);

#endif
